"""Request-level protections that apply before any view runs."""

import secrets
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_cache_control, patch_vary_headers


class RequestBodyLimitMiddleware:
    """Refuse request bodies larger than DATA_UPLOAD_MAX_MEMORY_SIZE with 413.

    Django applies that limit only to `request.body` and form parsing; DRF's
    parsers read the stream directly, so without this a JSON body of any size
    would be read into memory.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Invalid Content-Length header."}, status=400)
        if limit is not None and length > limit:
            return JsonResponse(
                {"detail": f"Request body exceeds the limit of {limit} bytes."},
                status=413,
            )
        return self.get_response(request)


# Pages with a Content-Security-Policy: admin and the API docs. Their scripts
# come from the service's own static files; the one inline script (Swagger
# UI's start-up) carries the request's nonce.
CSP_PATH_PREFIXES = ("/admin/", "/api/docs/")
CSP_TEMPLATE = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'nonce-{nonce}'",
        # Swagger UI and admin set style attributes; styles cannot run code.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ResponseHeadersMiddleware:
    """Headers every dynamic response carries (static files are answered before this runs).

    - `Cache-Control: private, no-store`: answers hold personal data and
      depend on who asks; no browser or shared cache may keep them.
    - `Vary: Authorization, Cookie`: the caller is named by either.
    - A Content-Security-Policy on admin and docs pages, with a fresh nonce
      per request (`request.csp_nonce`) for the inline scripts they render.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.csp_nonce = secrets.token_urlsafe(16)
        response = self.get_response(request)
        patch_cache_control(response, private=True, no_store=True)
        patch_vary_headers(response, ("Authorization", "Cookie"))
        if request.path.startswith(CSP_PATH_PREFIXES) and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = CSP_TEMPLATE.format(nonce=request.csp_nonce)
        return response
