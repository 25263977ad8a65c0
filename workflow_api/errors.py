"""Domain errors raised by services; `workflow_api.api.exception_handler` maps them to HTTP."""


class DomainError(Exception):
    """Base class: a business rule refused the operation."""

    code = "domain_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(DomainError):
    code = "not_found"


class InvalidTransition(DomainError):
    """The object's current state does not allow the operation."""

    code = "invalid_transition"


class Conflict(DomainError):
    code = "conflict"


class DependencyUnavailable(DomainError):
    """A service we depend on (TTS) did not answer usefully; trying later may work."""

    code = "dependency_unavailable"


class InvalidInput(DomainError):
    """The request is well-formed but names something that does not fit (400).

    `field`: the input it is about, when one is; the API then answers it as that field's error.
    """

    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field
