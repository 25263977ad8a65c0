"""At-least-once delivery of ticket messages: redelivered copies change nothing."""

import pytest

from conftest import ticket_payload
from task.models import Task
from tests.integration.conftest import wait_until
from tickets.models import WorkflowTicket

pytestmark = pytest.mark.integration


def _settled(cluster, tickets: int) -> bool:
    return (
        Task.objects.count() >= tickets
        and WorkflowTicket.objects.filter(is_task_allocated=True).count() >= tickets
        and cluster.broker.idle()
    )


def test_same_ticket_delivered_five_times_one_after_another_gives_one_ticket_and_one_task(
    cluster, it_workflow
):
    cluster.start("solo")
    payload = ticket_payload("TX-SEQ-1")

    for delivery in range(5):
        cluster.broker.send_ticket(payload)
        # One after another: the next copy is sent once the previous one was handled.
        wait_until(
            lambda n=delivery: cluster.logs().count("Ticket TX-SEQ-1 ") >= n + 1 and cluster.broker.idle(),
            timeout=30,
            what=f"delivery {delivery + 1} to be handled",
        )

    assert WorkflowTicket.objects.filter(ticket_number="TX-SEQ-1").count() == 1
    ticket = WorkflowTicket.objects.get(ticket_number="TX-SEQ-1")
    assert ticket.is_task_allocated
    assert Task.objects.filter(ticket=ticket).count() == 1
    assert len(Task.objects.get(ticket=ticket).users) == 3
    assert cluster.logs().count("Ticket TX-SEQ-1 created") == 1
    assert cluster.logs().count("Ticket TX-SEQ-1 updated") == 4


def test_copies_delivered_concurrently_to_two_workers_give_one_ticket_and_one_task_each(cluster, it_workflow):
    first = cluster.start("alpha", concurrency=2, wait=False)
    second = cluster.start("beta", concurrency=2, wait=False)
    first.wait_ready()
    second.wait_ready()
    numbers = [f"TX-CONC-{n}" for n in range(10)]

    # Five copies of each ticket back to back: four pool processes in two
    # workers race to store the same ticket number.
    for number in numbers:
        for _copy in range(5):
            cluster.broker.send_ticket(ticket_payload(number))

    wait_until(lambda: _settled(cluster, len(numbers)), timeout=90, what="all tickets to be allocated")
    assert sorted(WorkflowTicket.objects.values_list("ticket_number", flat=True)) == sorted(numbers)
    assert Task.objects.count() == len(numbers)
    for ticket in WorkflowTicket.objects.all():
        assert ticket.is_task_allocated
        assert ticket.tasks.count() == 1
    # Both workers took part, and a lost insert race never surfaced as a failure.
    assert "Ticket TX-CONC-" in first.log()
    assert "Ticket TX-CONC-" in second.log()
    logs = cluster.logs()
    assert "IntegrityError" not in logs
    assert "raised unexpected" not in logs
    assert logs.count(" created (id ") == len(numbers)
