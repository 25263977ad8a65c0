"""Request body parsing: JSON that would crash the service, or the database, is a 400."""

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser as DRFJSONParser


def _has_lone_surrogate(text: str) -> bool:
    # JSON may spell "\ud800" as an escape; such a string cannot be encoded as
    # UTF-8, so it would fail in the database driver or while rendering the reply.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_json_document(data: object, *, max_depth: int) -> None:
    """Raise ParseError if `data` nests deeper than `max_depth` or holds a lone surrogate.

    Iterative, so that checking a deep document cannot itself recurse too deep.
    """
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _has_lone_surrogate(value):
                raise ParseError("JSON parse error - strings must be valid Unicode (no lone surrogates).")
        elif isinstance(value, dict | list):
            if depth > max_depth:
                raise ParseError(f"JSON parse error - nesting deeper than {max_depth} levels.")
            if isinstance(value, dict):
                stack.extend((key, depth) for key in value)
                stack.extend((item, depth + 1) for item in value.values())
            else:
                stack.extend((item, depth + 1) for item in value)


class JSONParser(DRFJSONParser):
    """DRF's JSON parser, answering 400 instead of 500 to pathological documents.

    Python's decoder raises RecursionError (not ValueError) on deep nesting;
    shallower but still absurd nesting, and lone surrogates, are refused by
    `check_json_document`. API bodies nest two or three levels.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(
                f"JSON parse error - nesting deeper than {settings.API_MAX_JSON_DEPTH} levels."
            ) from exc
        check_json_document(data, max_depth=settings.API_MAX_JSON_DEPTH)
        return data
