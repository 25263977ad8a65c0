from django.apps import AppConfig


class TicketsConfig(AppConfig):
    """Tickets received from producer services, and the Celery entry points."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "tickets"
