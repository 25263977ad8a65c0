from django.contrib import admin
from django.urls import include, path

from workflow_api import docs, health, metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", health.health, name="health"),
    path("metrics", metrics.metrics, name="metrics"),
    path("tasks/api/", include("task.urls")),
    path("tickets/api/", include("tickets.urls")),
    path("workflow/api/", include("workflow.urls")),
    path("api/schema/", docs.SchemaView.as_view(), name="schema"),
    path("api/docs/", docs.SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # Session login and logout links for the browsable API.
    path("api-auth/", include("rest_framework.urls")),
]

handler404 = "workflow_api.api.not_found"
handler500 = "workflow_api.api.server_error"
