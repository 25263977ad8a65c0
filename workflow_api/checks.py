"""Deploy checks for the API's own settings (`manage.py check --deploy`)."""

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

# HS256 keys shorter than the hash output weaken the signature (RFC 7518, 3.2).
MIN_JWT_KEY_BYTES = 32
DEVELOPMENT_MARKER = "insecure-local-development"


@register(Tags.security, deploy=True)
def check_jwt_signing_key(app_configs: object = None, **kwargs: object) -> list[CheckMessage]:
    key = settings.JWT_SIGNING_KEY
    if not key:
        return [
            Error(
                "JWT_SIGNING_KEY is not set: every token will be refused.",
                hint="Set it to the auth service's shared HS256 key.",
                id="workflow_api.E001",
            )
        ]
    if DEVELOPMENT_MARKER in key or len(key.encode()) < MIN_JWT_KEY_BYTES:
        return [
            Error(
                f"JWT_SIGNING_KEY is the development key or shorter than {MIN_JWT_KEY_BYTES} bytes.",
                hint="Use the auth service's shared key; anyone who knows a weak key can mint tokens.",
                id="workflow_api.E002",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_jwt_issuer_and_audience(app_configs: object = None, **kwargs: object) -> list[CheckMessage]:
    # Without them, a token the auth service issued for any other service of
    # the ecosystem (same shared key) is accepted here too.
    messages: list[CheckMessage] = []
    if not settings.JWT_AUDIENCE:
        messages.append(
            Warning(
                "JWT_AUDIENCE is not set: tokens issued for other services are accepted.",
                hint="Set it to the audience (aud) the auth service writes into tokens for this service.",
                id="workflow_api.W001",
            )
        )
    if not settings.JWT_ISSUER:
        messages.append(
            Warning(
                "JWT_ISSUER is not set: tokens from any issuer that knows the key are accepted.",
                hint="Set it to the issuer (iss) the auth service writes into its tokens.",
                id="workflow_api.W002",
            )
        )
    return messages
