"""Every endpoint needs a caller: a token from the auth service, its cookie, or a Django session."""

from datetime import timedelta

import jwt
import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from workflow_api.authentication import mint_token

# Every operation the API offers, with ids that need not exist: authentication comes first.
ENDPOINTS = [
    ("get", "/tasks/api/tasks/"),
    ("get", "/tasks/api/tasks/1/"),
    ("post", "/tasks/api/tasks/create_task_for_ticket/"),
    ("post", "/tasks/api/tasks/1/assign_user/"),
    ("post", "/tasks/api/tasks/1/update_user_status/"),
    ("post", "/tasks/api/tasks/1/complete_task/"),
    ("post", "/tasks/api/tasks/1/move_to_next_step/"),
    ("get", "/tasks/api/tasks/workflow_statistics/"),
    ("get", "/tickets/api/tickets/"),
    ("get", "/tickets/api/tickets/1/"),
    *[
        (method, path)
        for resource in ("roles", "workflows", "steps")
        for method, path in [
            ("get", f"/workflow/api/{resource}/"),
            ("post", f"/workflow/api/{resource}/"),
            ("get", f"/workflow/api/{resource}/1/"),
            ("put", f"/workflow/api/{resource}/1/"),
            ("patch", f"/workflow/api/{resource}/1/"),
            ("delete", f"/workflow/api/{resource}/1/"),
        ]
    ],
    # The routers' browsable index pages.
    ("get", "/tasks/api/"),
    ("get", "/tickets/api/"),
    ("get", "/workflow/api/"),
]
TASKS = "/tasks/api/tasks/"


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_anonymous_request_is_401_on_every_endpoint(anonymous, method, path):
    response = getattr(anonymous, method)(path, {}, format="json")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_bearer_token_is_the_identity_without_a_local_user_row(staff, assigned_task):
    response = staff.get(TASKS)

    assert response.status_code == 200
    assert response.json()["count"] == 1
    assert get_user_model().objects.count() == 0


def test_access_token_cookie_authenticates(assigned_task):
    client = APIClient()
    client.cookies["access_token"] = mint_token(user_id=3)

    assert client.get(f"{TASKS}{assigned_task.pk}/").status_code == 200


def test_cookie_token_needs_csrf_for_unsafe_methods(assigned_task):
    """A browser sends the cookie by itself, so a cross-site form must not be able to use it."""
    client = APIClient(enforce_csrf_checks=True)
    client.cookies["access_token"] = mint_token(user_id=3)
    path = f"{TASKS}{assigned_task.pk}/update_user_status/"
    body = {"user_id": 3, "status": "in_progress"}

    without_csrf = client.post(path, body, format="json")
    client.cookies["csrftoken"] = "a" * 32
    with_csrf = client.post(path, body, format="json", HTTP_X_CSRFTOKEN="a" * 32)

    assert without_csrf.status_code == 403
    assert "CSRF" in without_csrf.json()["detail"]
    assert with_csrf.status_code == 200


def test_bearer_token_needs_no_csrf(assigned_task):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {mint_token(user_id=3)}")
    path = f"{TASKS}{assigned_task.pk}/update_user_status/"

    assert client.post(path, {"user_id": 3, "status": "in_progress"}, format="json").status_code == 200


def test_django_session_login_authenticates(db, client):
    user = get_user_model().objects.create_user("admin", password="pw-for-tests", is_staff=True)
    client.force_login(user)

    assert client.get(TASKS).status_code == 200
    assert client.get("/api/docs/").status_code == 200


def _bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _signed(claims: dict, key: str | None = None, algorithm: str = "HS256") -> str:
    from django.conf import settings

    return jwt.encode(claims, key or settings.JWT_SIGNING_KEY, algorithm=algorithm)


def _future() -> int:
    import time

    return int(time.time()) + 600


@pytest.mark.parametrize(
    ("token_factory", "why"),
    [
        (lambda: mint_token(user_id=3, lifetime=timedelta(minutes=-5)), "expired"),
        (lambda: _signed({"user_id": 3, "exp": _future()}, key="another-key-" * 4), "wrong key"),
        pytest.param(
            lambda: _signed({"user_id": 3, "exp": _future()}, algorithm="HS512"),
            "other algorithm",
            marks=pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
        ),
        (lambda: jwt.encode({"user_id": 3, "exp": _future()}, None, algorithm="none"), "unsigned"),
        (lambda: _signed({"user_id": 3}), "no expiry"),
        (lambda: _signed({"sub": "3", "exp": _future()}), "no user_id"),
        (lambda: _signed({"user_id": "three", "exp": _future()}), "user_id not a number"),
        (lambda: _signed({"user_id": 0, "exp": _future()}), "user_id not positive"),
        (lambda: "not-a-jwt", "garbage"),
        (lambda: _signed({"user_id": 3, "exp": _future(), "token_type": "refresh"}), "refresh token"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_invalid_tokens_are_401(assigned_task, token_factory, why):
    response = _bearer(token_factory()).get(TASKS)

    assert response.status_code == 401, why


def test_expired_token_says_so(db):
    response = _bearer(mint_token(user_id=3, lifetime=timedelta(minutes=-5))).get(TASKS)

    assert response.json()["detail"] == "Token has expired."


def test_malformed_authorization_header_is_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer two parts")

    assert client.get(TASKS).status_code == 401


def test_issuer_and_audience_are_checked_when_configured(settings, db):
    settings.JWT_ISSUER = "https://auth.example.com"
    settings.JWT_AUDIENCE = "workflow_api"
    future = _future()

    good = _signed(
        {"user_id": 1, "is_staff": True, "exp": future, "iss": settings.JWT_ISSUER, "aud": "workflow_api"}
    )
    wrong_issuer = _signed(
        {"user_id": 1, "exp": future, "iss": "https://evil.example.com", "aud": "workflow_api"}
    )
    wrong_audience = _signed(
        {"user_id": 1, "exp": future, "iss": settings.JWT_ISSUER, "aud": "another_service"}
    )
    neither = _signed({"user_id": 1, "exp": future})

    assert _bearer(good).get(TASKS).status_code == 200
    assert _bearer(mint_token(user_id=1, is_staff=True)).get(TASKS).status_code == 200
    assert _bearer(wrong_issuer).get(TASKS).status_code == 401
    assert _bearer(wrong_audience).get(TASKS).status_code == 401
    assert _bearer(neither).get(TASKS).status_code == 401


def test_issuer_and_audience_are_ignored_when_not_configured(settings, db):
    settings.JWT_ISSUER = ""
    settings.JWT_AUDIENCE = ""
    token = _signed({"user_id": 1, "exp": _future(), "iss": "anyone", "aud": "anything"})

    assert _bearer(token).get(TASKS).status_code == 200


def test_without_a_signing_key_every_token_is_refused(settings, db):
    token = mint_token(user_id=1, is_staff=True)
    settings.JWT_SIGNING_KEY = ""

    assert _bearer(token).get(TASKS).status_code == 401


@pytest.mark.parametrize("claim_value", [False, "true", 1, None])
def test_only_is_staff_true_marks_an_administrator(db, claim_value):
    token = _signed({"user_id": 5, "exp": _future(), "is_staff": claim_value})

    assert _bearer(token).get("/tasks/api/tasks/workflow_statistics/").status_code == 403


def test_mint_dev_token_command_prints_a_working_token(db):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("mint_dev_token", "--user-id", "3", "--admin", stdout=out)
    token = out.getvalue().strip()

    assert _bearer(token).get("/tasks/api/tasks/workflow_statistics/").status_code == 200


def test_browsable_api_login_form_starts_a_session(db, client):
    get_user_model().objects.create_user("agent", password="pw-for-tests", is_staff=False)

    response = client.post("/api-auth/login/", {"username": "agent", "password": "pw-for-tests"})

    assert response.status_code == 302
    assert client.get(TASKS).status_code == 200
    assert client.get("/tickets/api/tickets/").status_code == 403  # a session is not staff by itself


def test_token_marked_as_access_token_is_accepted(assigned_task):
    token = _signed({"user_id": 3, "exp": _future(), "token_type": "access"})

    assert _bearer(token).get(TASKS).status_code == 200


def test_a_local_non_staff_account_is_nobodys_assignee(db, client, assigned_task):
    # Its pk is a local number, not an auth-service user id, even when they coincide.
    user_model = get_user_model()
    user_model.objects.bulk_create(
        [
            user_model(pk=pk, username=f"local-{pk}")
            for pk in range(1, 4)
            if not user_model.objects.filter(pk=pk)
        ]
    )
    client.force_login(user_model.objects.get(pk=3))

    listing = client.get(TASKS)
    status_change = client.post(
        f"{TASKS}{assigned_task.pk}/update_user_status/",
        {"user_id": 3, "status": "in_progress"},
        content_type="application/json",
    )

    assert listing.status_code == 200
    assert listing.json()["count"] == 0
    assert status_change.status_code == 404
