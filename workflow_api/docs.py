"""The Swagger UI page, served under a Content-Security-Policy."""

from drf_spectacular.views import SpectacularSwaggerView


class SwaggerView(SpectacularSwaggerView):
    """drf-spectacular's Swagger UI; its inline start-up script carries the request's CSP nonce."""

    template_name = "workflow_api/swagger_ui.html"
