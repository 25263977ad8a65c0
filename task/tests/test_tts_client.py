import logging

import pytest
import requests

from conftest import ROUND_ROBIN_URL
from task import tts as tts_client
from task.tts import fetch_users_for_role


def test_fetch_users_for_role_sends_the_role_name_and_returns_the_ids(tts):
    tts.role("IT Support Technician", [3, 6, 7])

    assert fetch_users_for_role("IT Support Technician") == [3, 6, 7]
    (call,) = tts.mock.calls
    assert call.request.url == f"{ROUND_ROBIN_URL}?role_name=IT+Support+Technician"


def test_requests_carry_connect_and_read_timeouts(tts, settings):
    settings.TTS_CONNECT_TIMEOUT = 1.5
    settings.TTS_READ_TIMEOUT = 4.0
    tts.role("Manager", [11])

    fetch_users_for_role("Manager")

    assert tts.mock.calls[0].request.req_kwargs["timeout"] == (1.5, 4.0)


def test_the_http_session_is_reused_between_calls(tts):
    tts.role("Manager", [11])

    fetch_users_for_role("Manager")
    session = tts_client._session()
    fetch_users_for_role("Manager")

    assert tts_client._session() is session
    assert len(tts.mock.calls) == 2


@pytest.mark.parametrize(
    ("failure", "expected_log"),
    [
        ({"body": requests.ConnectionError("refused")}, "unreachable"),
        ({"body": requests.ReadTimeout("slow")}, "unreachable"),
        ({"status": 503, "json": {"detail": "down"}}, "503"),
        ({"status": 404, "json": {"detail": "nope"}}, "404"),
        ({"status": 200, "body": "<html>oops</html>"}, "non-JSON"),
        ({"status": 200, "json": {"users": [3]}}, "got dict"),
        ({"status": 200, "json": ["3", "6"]}, "not a user id"),
        ({"status": 200, "json": [3, -6]}, "not a user id"),
        ({"status": 200, "json": [True]}, "not a user id"),
        ({"status": 200, "json": [3, 2**63]}, "not a user id"),
        ({"status": 200, "json": list(range(1, 5000))}, "exceeds the limit"),
    ],
)
def test_network_errors_and_malformed_answers_give_an_empty_list_and_a_logged_error(
    tts, caplog, failure, expected_log
):
    tts.fail("Manager", **failure)

    with caplog.at_level(logging.ERROR, logger="task.tts"):
        assert fetch_users_for_role("Manager") == []

    assert expected_log in caplog.text


def test_transient_failures_and_bad_answers_are_told_apart(tts):
    tts.fail("Down", status=502)
    tts.fail("Broken", status=200, body="<html/>")

    with pytest.raises(tts_client.TTSUnavailable):
        tts_client.get_role_user_ids("Down")
    with pytest.raises(tts_client.TTSBadResponse):
        tts_client.get_role_user_ids("Broken")


def test_repeated_ids_are_dropped_keeping_the_order(tts):
    tts.role("Manager", [11, 12, 11])

    assert fetch_users_for_role("Manager") == [11, 12]
