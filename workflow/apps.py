from django.apps import AppConfig


class WorkflowConfig(AppConfig):
    """Roles, workflows and their ordered steps: what admins configure."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "workflow"
