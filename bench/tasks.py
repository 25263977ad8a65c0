"""Baseline Celery tasks the pipeline is compared with.

Only benchmark workers load this module (`celery -A workflow_api worker -I bench.tasks`),
so production workers never register these tasks.
"""

import json

from celery import shared_task
from django.db import connection

BASELINE_TABLE = "bench_baseline_row"
CREATE_BASELINE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {BASELINE_TABLE} ("
    "id bigserial PRIMARY KEY, payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
)


@shared_task(name="bench.tasks.noop")
def noop(payload: object) -> None:
    """Does nothing: the cost of Celery itself (broker round trip, ack, pool hand-off)."""


@shared_task(name="bench.tasks.insert_row")
def insert_row(payload: object) -> None:
    """One INSERT of the message as a JSON row: what a hand-written consumer does at the least."""
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {BASELINE_TABLE} (payload) VALUES (%s)", [json.dumps(payload)])
