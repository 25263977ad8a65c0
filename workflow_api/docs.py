"""The OpenAPI schema and the Swagger UI page: open to anyone, every operation in them still needs a token."""

from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView


class SchemaView(SpectacularAPIView):
    # JSON first: what a browser (Accept: */*) gets is shown, not downloaded.
    # YAML for whoever asks for it (Accept: application/vnd.oai.openapi, or ?format=yaml).
    renderer_classes = [OpenApiJsonRenderer2, OpenApiJsonRenderer, OpenApiYamlRenderer, OpenApiYamlRenderer2]


class SwaggerView(SpectacularSwaggerView):
    """drf-spectacular's Swagger UI; its inline start-up script carries the request's CSP nonce."""

    template_name = "workflow_api/swagger_ui.html"
