"""The tickets API: lists leave the producer's whole message out, details keep it."""

import pytest

from conftest import ticket_payload
from tickets import services

pytestmark = pytest.mark.django_db


def _store(number: str, **fields):
    payload = ticket_payload(number, employee={"email": f"{number.lower()}@example.org"}, **fields)
    ticket, _action = services.ticket_receive(payload=payload)
    return ticket, payload


def test_ticket_list_leaves_ticket_data_out(api_client):
    _store("TX-LIST-1")
    _store("TX-LIST-2")

    response = api_client.get("/tickets/api/tickets/")

    assert response.status_code == 200
    results = response.json()["results"]
    assert {ticket["ticket_number"] for ticket in results} == {"TX-LIST-1", "TX-LIST-2"}
    for ticket in results:
        assert "ticket_data" not in ticket
        assert ticket["subject"] == "Printer is on fire"
    assert "@example.org" not in response.content.decode()


def test_ticket_details_keep_ticket_data(api_client):
    ticket, payload = _store("TX-DETAIL")

    response = api_client.get(f"/tickets/api/tickets/{ticket.pk}/")

    assert response.status_code == 200
    assert response.json()["ticket_data"] == payload


def test_a_page_of_50_large_tickets_carries_each_description_once(api_client):
    description = "d" * (64 * 1024)
    for n in range(50):
        _store(f"TX-PAGE-{n}", description=description)

    response = api_client.get("/tickets/api/tickets/", {"page_size": 50})

    assert len(response.json()["results"]) == 50
    assert response.content.count(description.encode()) == 50
