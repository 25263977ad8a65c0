from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("tasks/api/", include("task.urls")),
    path("tickets/api/", include("tickets.urls")),
    path("workflow/api/", include("workflow.urls")),
]
