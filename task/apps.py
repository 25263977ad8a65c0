from django.apps import AppConfig


class TaskConfig(AppConfig):
    """Tasks created from tickets: their assignments and their lifecycle."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "task"
