from django.apps import AppConfig


class WorkflowApiConfig(AppConfig):
    """The project package as an app: the API's management commands, deploy checks and metric counters."""

    name = "workflow_api"
    verbose_name = "workflow_api"

    def ready(self) -> None:
        from workflow_api import checks  # noqa: F401  (registers the checks)
