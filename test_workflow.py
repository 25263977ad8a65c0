#!/usr/bin/env python
"""Demonstrates the ticket-to-task pipeline end to end: `make demo` (or `python test_workflow.py`).

The six steps of the specification, and the assignment engine beyond it,
against real HTTP on both sides:
  1. roles and workflows are configured,
  2. tickets are received through the Celery task `receive_ticket`,
  3. tasks are created automatically, with users from the TTS round-robin endpoint,
  4. a task is created by hand through the REST API,
  5. a task is driven through the REST API (assign, status, next step, complete),
  6. the statistics endpoint reports the result,
  7. who gets the work: a load-balanced step, an unavailable user skipped, a
     reassignment, and one decision record printed in full,
  8. a step deadline, its escalation once overdue, and a completion rule moving
     the task on.

The demo runs on a throwaway SQLite database of its own, created in a
temporary directory, migrated, and deleted when it ends: the service's
database (db.sqlite3, or the one at DATABASE_URL) is never opened, and a
worker of the service never sees the demo's tickets. Celery tasks therefore
run in this process (a worker would read the service's database, not this
one). TTS: when TTS_SERVICE_URL is unset, the project's fake TTS (fake_tts/)
is started on a free local port. The REST API is served from this process on
a free local port and called with a staff token. Exits non-zero if any step
fails.
"""

import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

BASE_DIR = Path(__file__).resolve().parent
UPSTREAM_EXAMPLE = BASE_DIR / "tickets" / "tests" / "data" / "upstream_ticket.json"
WAIT_SECONDS = 30.0
STEPS = 8

logger = logging.getLogger("demo")


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:
        logger.debug(format, *args)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Report:
    """Collects checks per step and prints them as they happen."""

    def __init__(self) -> None:
        self.failures = 0
        self.checks = 0

    def step(self, number: int, title: str) -> None:
        sys.stdout.write(f"\n[{number}/{STEPS}] {title}\n")

    def info(self, text: str) -> None:
        sys.stdout.write(f"      {text}\n")

    def check(self, ok: bool, text: str) -> bool:
        self.checks += 1
        if not ok:
            self.failures += 1
        sys.stdout.write(f"  {'PASS' if ok else 'FAIL'}  {text}\n")
        return ok


def _wait_for(condition: Callable[[], object], timeout: float = WAIT_SECONDS) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def _start_fake_tts() -> str:
    from fake_tts.server import start_in_thread

    _server, url = start_in_thread()
    return url


def main() -> int:
    logging.basicConfig(level=os.environ.get("DEMO_LOG_LEVEL", "WARNING"))
    workdir = tempfile.mkdtemp(prefix="workflow-api-demo-")
    try:
        return _run(Path(workdir) / "demo.sqlite3")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(database: Path) -> int:
    # Set before Django reads its settings; values in .env never override these.
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    os.environ["DJANGO_CELERY_BROKER_URL"] = ""
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    fake_tts_url = None
    if not os.environ.get("TTS_SERVICE_URL"):
        fake_tts_url = _start_fake_tts()
        os.environ["TTS_SERVICE_URL"] = fake_tts_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_api.settings")
    # The report goes to stdout; keep the service's own logs to errors unless asked.
    os.environ.setdefault("DJANGO_LOG_LEVEL", "ERROR")

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", "--noinput", verbosity=0)

    import requests
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application

    from task.models import Task
    from tickets import tasks
    from tickets.models import WorkflowTicket
    from workflow.models import Roles, Steps, Workflows
    from workflow_api.authentication import mint_token

    report = Report()
    run = uuid.uuid4().hex[:8].upper()
    eager = settings.CELERY_TASK_ALWAYS_EAGER

    sys.stdout.write("workflow_api demo\n")
    sys.stdout.write(
        "  database: a throwaway SQLite file, deleted at the end (the service's is not touched)\n"
    )
    sys.stdout.write(f"  celery:   {'in-process (no broker configured)' if eager else 'broker + worker'}\n")
    tts_origin = "fake TTS started by the demo" if fake_tts_url else "TTS_SERVICE_URL"
    sys.stdout.write(f"  TTS:      {settings.TTS_SERVICE_URL} ({tts_origin})\n")

    httpd = make_server("127.0.0.1", 0, get_wsgi_application(), _ThreadingWSGIServer, _QuietHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    api = f"http://127.0.0.1:{httpd.server_address[1]}"
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {mint_token(user_id=1, is_staff=True)}"
    sys.stdout.write(f"  REST API: {api} (staff token)\n")

    # 1. Roles and workflows -------------------------------------------------
    report.step(1, "Create roles and workflows")
    technician, _ = Roles.objects.get_or_create(
        name="IT Support Technician", defaults={"description": "First-line IT support"}
    )
    manager, _ = Roles.objects.get_or_create(name="Manager", defaults={"description": "Approves work"})
    specific = _workflow(
        Workflows, Steps, "Demo: VPN and remote access", "Technical Assistance", [technician, manager]
    )
    generic = _workflow(Workflows, Steps, "Demo: general IT support", "", [technician])
    report.check(specific.steps.count() == 2, f"workflow {specific.name!r} deployed with 2 steps")
    report.check(generic.steps.count() == 1, f"workflow {generic.name!r} deployed with 1 step (fallback)")

    # 2. Ticket reception ----------------------------------------------------
    report.step(2, "Receive tickets through the Celery task receive_ticket")
    upstream = json.loads(UPSTREAM_EXAMPLE.read_text())
    upstream["ticket_id"] = f"TX-DEMO-{run}-1"
    other = dict(upstream, ticket_id=f"TX-DEMO-{run}-2", subcategory="Printer", subject="Printer jams")
    bad = {"ticket_id": f"TX-DEMO-{run}-3", "subject": ["not", "a", "string"]}
    for payload in (upstream, other):
        result = tasks.receive_ticket.delay(payload)
        if eager:
            outcome = result.get()
            report.check(
                outcome["action"] == "created",
                f"{payload['ticket_id']}: {outcome['status']}, {outcome['action']}",
            )
    rejected = tasks.receive_ticket.apply(args=[bad]).get()
    report.check(
        rejected["status"] == "error" and "subject" in rejected["errors"],
        f"malformed message rejected: {rejected['errors']}",
    )
    report.check(
        not WorkflowTicket.objects.filter(ticket_number=bad["ticket_id"]).exists(),
        "malformed message left no ticket behind",
    )

    # 3. Automatic task creation --------------------------------------------
    report.step(3, "Tasks created automatically (workflow match, first step, TTS round-robin)")
    first = _wait_for(lambda: Task.objects.filter(ticket__ticket_number=upstream["ticket_id"]).first())
    second = _wait_for(lambda: Task.objects.filter(ticket__ticket_number=other["ticket_id"]).first())
    if report.check(first is not None, f"{upstream['ticket_id']} got a task"):
        report.check(first.workflow_id == specific.pk, f"exact match: {first.workflow.name!r}")
        report.info(f"step {first.current_step.name!r}, users {first.get_assigned_user_ids()}")
        report.info(json.dumps(first.users[0]))
    if report.check(second is not None, f"{other['ticket_id']} got a task"):
        report.check(second.workflow_id == generic.pk, f"fallback to department + category: {generic.name!r}")
    allocated = WorkflowTicket.objects.filter(
        ticket_number__in=[upstream["ticket_id"], other["ticket_id"]], is_task_allocated=True
    ).count()
    report.check(allocated == 2, "both tickets marked is_task_allocated")

    # 4. Manual creation -----------------------------------------------------
    report.step(4, "Create a task by hand through the REST API")
    # A department of its own per run, so that it has no workflow until we add one.
    department = f"Facilities {run}"
    orphan = dict(upstream, ticket_id=f"TX-DEMO-{run}-4", department=department, category="Building")
    tasks.receive_ticket.delay(orphan)
    ticket = _wait_for(
        lambda: (
            WorkflowTicket.objects.filter(ticket_number=orphan["ticket_id"])
            .exclude(allocation_error="")
            .first()
        )
    )
    if report.check(ticket is not None, "ticket with no matching workflow stored, unallocated"):
        report.info(f"recorded reason: {ticket.allocation_failure_reason}")
        _workflow(
            Workflows, Steps, f"Demo: {department}", "", [manager], department=department, category="Building"
        )
        response = http.post(f"{api}/tasks/api/tasks/create_task_for_ticket/", json={"ticket_id": ticket.pk})
        report.check(response.status_code == 201, f"POST create_task_for_ticket -> {response.status_code}")
        again = http.post(f"{api}/tasks/api/tasks/create_task_for_ticket/", json={"ticket_id": ticket.pk})
        report.check(
            again.status_code == 200, f"repeated POST returns the existing task -> {again.status_code}"
        )

    # 5. Task operations -----------------------------------------------------
    report.step(5, "Drive a task through the REST API")
    if first is not None:
        base = f"{api}/tasks/api/tasks/{first.pk}"
        steps = [
            ("assign_user", {"userID": 42, "username": "demo_user", "role": technician.name}, 200),
            ("assign_user", {"userID": "not a number"}, 400),
            (
                "update_user_status",
                {"user_id": first.get_assigned_user_ids()[0], "status": "in_progress"},
                200,
            ),
            ("move_to_next_step", None, 200),
            ("complete_task", None, 200),
            ("complete_task", None, 409),
        ]
        for action, body, expected in steps:
            response = http.post(f"{base}/{action}/", json=body)
            data = response.json()
            summary = data.get("status") if response.ok else data
            report.check(response.status_code == expected, f"{action} -> {response.status_code} ({summary})")
        final = http.get(f"{base}/").json()
        report.check(final["status"] == "completed", f"task {first.pk} is {final['status']}")
        report.check(http.get(f"{api}/tasks/api/tasks/999999999/").status_code == 404, "unknown task -> 404")

    # 6. Statistics ----------------------------------------------------------
    report.step(6, "Statistics")
    response = http.get(f"{api}/tasks/api/tasks/workflow_statistics/")
    if report.check(response.status_code == 200, "GET workflow_statistics -> 200"):
        stats = response.json()
        report.info(f"total tasks: {stats['total_tasks']}")
        report.info("by status: " + ", ".join(f"{k}={v}" for k, v in stats["by_status"].items()))
        for entry in stats["by_workflow"]:
            report.info(f"{entry['workflow_name']}: {entry['total']}")

    # 7. The assignment engine ---------------------------------------------------
    report.step(7, "Who gets the work: load balancing, availability, reassignment, the decision record")
    _assignment_engine(report, http, api, run, tasks, Task, Roles, Steps, Workflows)

    # 8. Deadlines, escalation, completion rules ------------------------------------
    report.step(8, "A step deadline, its escalation once overdue, and a completion rule")
    _deadlines(report, http, api, run, tasks, Task, Roles, Steps, Workflows, technician, manager)

    httpd.shutdown()
    verdict = "all passed" if not report.failures else f"{report.failures} FAILED"
    sys.stdout.write(f"\n{report.checks} checks, {verdict}\n")
    return 1 if report.failures else 0


def _assignment_engine(report, http, api, run, tasks, Task, Roles, Steps, Workflows) -> None:  # noqa: N803
    """A load-balanced step over TTS's four finance officers, one of whom is unavailable."""
    finance, _ = Roles.objects.get_or_create(
        name="Finance Officer", defaults={"description": "Pays invoices"}
    )
    department = f"Finance {run}"
    workflow = _workflow(
        Workflows, Steps, f"Demo: {department}", "", [finance], department=department, category="Invoices"
    )
    step = workflow.steps.get()
    response = http.patch(
        f"{api}/workflow/api/steps/{step.pk}/",
        json={"assignment_strategy": "load_balanced", "max_assignees": 1},
    )
    report.check(response.status_code == 200, f"step {step.name!r} set to load_balanced, 1 assignee")
    response = http.put(f"{api}/tasks/api/availability/32/", json={"status": "unavailable"})
    report.check(response.status_code == 200, f"user 32 marked unavailable -> {response.status_code}")
    response = http.get(f"{api}/workflow/api/steps/{step.pk}/next_assignees/", params={"count": 3})
    if report.check(response.status_code == 200, "dry run: who the next 3 tickets would go to"):
        predicted = [entry["user_ids"] for entry in response.json()["next"]]
        report.info(f"next_assignees: {predicted}")
    numbers = [f"TX-DEMO-{run}-F{n}" for n in range(1, 4)]
    for number in numbers:
        tasks.receive_ticket.delay(
            {
                "ticket_id": number,
                "subject": "Invoice to pay",
                "department": department,
                "category": "Invoices",
            }
        )
    finance_tasks = [
        _wait_for(lambda number=number: Task.objects.filter(ticket__ticket_number=number).first())
        for number in numbers
    ]
    if not report.check(all(finance_tasks), "3 finance tickets got their tasks"):
        return
    assigned = [task.get_assigned_user_ids() for task in finance_tasks]
    report.info(f"assigned: {assigned}")
    report.check(all(32 not in users for users in assigned), "unavailable user 32 was skipped")
    report.check(assigned == predicted, "the dry run predicted exactly these assignments")
    first = finance_tasks[0]
    holder = first.get_assigned_user_ids()[0]
    response = http.post(f"{api}/tasks/api/tasks/{first.pk}/reassign/", json={"from_user_id": holder})
    if report.check(response.status_code == 200, f"task {first.pk} reassigned away from user {holder}"):
        report.info(f"now assigned to {[user['userID'] for user in response.json()['users']]}")
    history = http.get(f"{api}/tasks/api/tasks/{first.pk}/history/").json()
    report.check(
        [entry["kind"] for entry in history] == ["assigned", "reassigned"], "history: assigned, reassigned"
    )
    report.info("the first decision record, in full:")
    for line in json.dumps(history[0], indent=2).splitlines():
        report.info(f"  {line}")


def _deadlines(report, http, api, run, tasks, Task, Roles, Steps, Workflows, technician, manager) -> None:  # noqa: N803
    """An urgent ticket due in one second, escalated to the Admin role, then completed by its assignee."""
    from task import tasks as task_tasks
    from workflow_api.authentication import mint_token

    admin_role, _ = Roles.objects.get_or_create(name="Admin", defaults={"description": "Escalations"})
    department = f"Outages {run}"
    workflow = _workflow(
        Workflows,
        Steps,
        f"Demo: {department}",
        "",
        [technician, manager],
        department=department,
        category="Outage",
    )
    url = f"{api}/workflow/api/workflows/{workflow.pk}/"
    response = http.patch(url, json={"urgent_sla": "04:00:00", "high_sla": "01:00:00"})
    report.check(
        response.status_code == 400 and "high_sla" in response.json(), "SLAs out of order refused (400)"
    )
    response = http.patch(
        url, json={"urgent_sla": "00:00:01", "high_sla": "00:30:00", "medium_sla": "04:00:00"}
    )
    report.check(response.status_code == 200, "SLAs set: urgent 1 s, high 30 min, medium 4 h")
    first_step = workflow.steps.get(order=1)
    response = http.patch(
        f"{api}/workflow/api/steps/{first_step.pk}/",
        json={
            "max_assignees": 1,
            "escalation": "escalate_to_role",
            "escalation_role": admin_role.pk,
            "completion_policy": "any",
        },
    )
    report.check(
        response.status_code == 200, "first step: escalate to Admin when overdue; any assignee completes it"
    )
    number = f"TX-DEMO-{run}-U1"
    tasks.receive_ticket.delay(
        {
            "ticket_id": number,
            "subject": "Site down",
            "department": department,
            "category": "Outage",
            "priority": "Urgent",
        }
    )
    task = _wait_for(lambda: Task.objects.filter(ticket__ticket_number=number).first())
    if not report.check(
        task is not None and task.step_due_at is not None, "urgent ticket: its step is due in 1 s"
    ):
        return
    report.info(f"step_due_at {task.step_due_at.isoformat()}")
    time.sleep(max((task.step_due_at - task.step_entered_at).total_seconds(), 0) + 0.2)
    overdue = http.get(f"{api}/tasks/api/tasks/", params={"overdue": "true"}).json()["results"]
    report.check(task.pk in [row["task_id"] for row in overdue], "listed by ?overdue=true")
    # What celery beat runs every SLA_CHECK_INTERVAL seconds.
    task_tasks.escalate_overdue_tasks.delay()
    history_url = f"{api}/tasks/api/tasks/{task.pk}/history/"

    def escalated() -> list:
        return [entry for entry in http.get(history_url).json() if entry["kind"] == "escalated"]

    events = _wait_for(escalated)
    if report.check(len(events) == 1, "escalated once: Admin users added through the engine"):
        report.info(f"escalation: {events[0]['details']}")
    task_tasks.escalate_overdue_tasks.delay()
    report.check(len(escalated()) == 1, "a second check escalates nothing more")
    assignee = task.get_assigned_user_ids()[0]
    response = http.post(
        f"{api}/tasks/api/tasks/{task.pk}/update_user_status/",
        json={"user_id": assignee, "status": "completed"},
        headers={"Authorization": f"Bearer {mint_token(user_id=assignee, is_staff=False)}"},
    )
    moved = response.status_code == 200 and response.json()["current_step_role"] == manager.name
    if report.check(
        moved, f"user {assignee} completed: the task moved on to the {manager.name} step by itself"
    ):
        report.info(f"now assigned to {[user['userID'] for user in response.json()['users']]}")


def _workflow(Workflows, Steps, name: str, sub_category: str, roles: list, **fields):  # noqa: N803
    """Create (or reuse) a deployed demo workflow with one step per role."""
    defaults = {"department": "IT Department", "category": "IT Support", **fields}
    workflow, created = Workflows.objects.get_or_create(
        name=name, defaults={**defaults, "sub_category": sub_category, "description": "Created by the demo"}
    )
    if created:
        for order, role in enumerate(roles, start=1):
            Steps.objects.create(workflow=workflow, role=role, name=f"{role.name} review", order=order)
    Workflows.objects.filter(pk=workflow.pk).update(is_published=True, status=Workflows.Status.DEPLOYED)
    workflow.refresh_from_db()
    return workflow


if __name__ == "__main__":
    sys.exit(main())
