"""The service's URLs plus the benchmark's floor view (bench.views)."""

from django.urls import include, path

from bench import views
from workflow_api.urls import handler404, handler500  # noqa: F401  (the service's error pages)

urlpatterns = [
    path("bench/floor/tasks/", views.task_page_floor),
    path("", include("workflow_api.urls")),
]
