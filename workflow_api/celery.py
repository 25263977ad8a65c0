"""Celery application: `celery -A workflow_api worker` / `celery -A workflow_api beat`."""

import os

from celery import Celery, signals

from workflow_api import intake

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_api.settings")

app = Celery("workflow_api")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Intake limits (README: "Security: ticket intake limits"): every JSON body is
# checked while it is decoded, and refused messages are logged without content.
intake.register_json_limits()
app.conf.worker_consumer = "workflow_api.intake:IntakeConsumer"
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _manage_db_connections(task=None, **kwargs) -> None:
    # Around every task, treat database connections as Django does around a
    # request: keep them for CONN_MAX_AGE, health-check them before reuse and
    # drop them after an error. (Celery's own Django fix-up would otherwise open
    # a new connection per task; CELERY_DB_REUSE_MAX in settings turns that off.)
    # Eager runs are inside the caller's request or transaction: leave them alone.
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
