"""Issue 12, the API and the web tier: every hostile input found in the attack, sent again, and its outcome.

Each test sends what the attacker sent and asserts what a caller now sees.
The deploy-check and compose findings are in tests/api/test_deploy_settings.py
and tests/integration/test_deployment.py.
"""

import json
import os
import re
import time
from datetime import timedelta

import jwt
import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from conftest import make_task, make_workflow
from task.models import Task
from workflow.models import Roles
from workflow_api.authentication import mint_token
from workflow_api.renderers import JSONRenderer

TASKS = "/tasks/api/tasks/"
TICKETS = "/tickets/api/tickets/"
ROLES = "/workflow/api/roles/"
PASSWORD = "correct-horse-battery-staple-7"


def _bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _signed(claims: dict) -> str:
    return jwt.encode(claims, django_settings.JWT_SIGNING_KEY, algorithm="HS256")


def _signed_raw(payload: bytes) -> str:
    """A token whose payload is these exact bytes (json.dumps refuses a 5,000-digit integer)."""
    return jwt.api_jws.encode(payload, django_settings.JWT_SIGNING_KEY, algorithm="HS256")


@pytest.fixture
def staff(db) -> APIClient:
    return _bearer(mint_token(user_id=1, is_staff=True))


@pytest.fixture
def assignee(db) -> APIClient:
    return _bearer(mint_token(user_id=3))


@pytest.fixture
def task(db) -> Task:
    workflow = make_workflow(name="Agents", steps=[Roles.objects.create(name="Agent")])
    return make_task(workflow, number="TX-HOSTILE", users=[{"userID": 3, "role": "Agent"}])


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- 5. Deep JSON bodies ------------------------------------------------------

BODY_ENDPOINTS = [
    ("post", "/tasks/api/tasks/{task}/update_user_status/"),
    ("post", "/tasks/api/tasks/{task}/assign_user/"),
    ("post", "/tasks/api/tasks/create_task_for_ticket/"),
    ("post", "/workflow/api/roles/"),
    ("post", "/workflow/api/workflows/"),
    ("post", "/workflow/api/steps/"),
    ("put", "/workflow/api/roles/{role}/"),
    ("patch", "/workflow/api/workflows/{workflow}/"),
]


@pytest.mark.parametrize(("method", "path"), BODY_ENDPOINTS)
def test_a_body_nesting_1000_deep_is_400_on_every_endpoint(staff, task, method, path):
    url = path.format(task=task.pk, role=task.current_step.role_id, workflow=task.workflow_id)

    response = getattr(staff, method)(url, data=_nested(1000), content_type="application/json")

    assert response.status_code == 400
    assert "nesting" in response.json()["detail"]


@pytest.mark.parametrize("document", [_nested(33), '{"status": ' + _nested(40) + "}", _nested(100_000)])
def test_nesting_over_the_documented_depth_is_400(staff, task, document):
    url = f"{TASKS}{task.pk}/update_user_status/"

    response = staff.post(url, data=document, content_type="application/json")

    assert response.status_code == 400


def test_an_ordinary_body_is_still_accepted(assignee, task):
    response = assignee.post(
        f"{TASKS}{task.pk}/update_user_status/", {"user_id": 3, "status": "in_progress"}, format="json"
    )

    assert response.status_code == 200


# --- 6. Lone surrogates -------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/tasks/api/tasks/{task}/update_user_status/", '{"user_id": 3, "status": "\\ud800"}'),
        ("/tasks/api/tasks/{task}/update_user_status/", '{"user_id": 3, "status": "in_\\udfffprogress"}'),
        ("/tasks/api/tasks/{task}/assign_user/", '{"userID": 5, "role": "\\ud800"}'),
        ("/workflow/api/roles/", '{"name": "\\ud800"}'),
        ("/workflow/api/roles/", '{"name": "Agent 2", "\\ud800": 1}'),
        ("/workflow/api/workflows/", '{"name": "W", "department": "\\udc00", "category": "C"}'),
    ],
)
def test_a_lone_surrogate_anywhere_is_400_with_a_json_body(staff, task, path, body):
    response = staff.post(path.format(task=task.pk), data=body, content_type="application/json")

    assert response.status_code == 400
    assert "detail" in json.loads(response.content)
    assert Roles.objects.count() == 1


def test_the_renderer_escapes_text_utf8_cannot_encode_instead_of_failing():
    rendered = JSONRenderer().render({"status": ['"\ud800" is not a valid choice.']})

    assert json.loads(rendered) == {"status": ['"\ud800" is not a valid choice.']}


def test_ordinary_non_ascii_text_is_still_rendered_as_utf8(staff, db):
    response = staff.post(ROLES, {"name": "Agent Ünïcode ３"}, format="json")

    assert response.status_code == 201
    assert "Agent Ünïcode ３".encode() in response.content


# --- 7. user_id in the token ----------------------------------------------------


def _future() -> int:
    return int(time.time()) + 600


@pytest.mark.parametrize(
    "user_id",
    [
        "３",  # fullwidth digit
        "٣",  # Arabic-Indic digit
        "𝟑",  # mathematical bold digit
        "0003",
        "03",
        "0",
        "-3",
        "+3",
        " 3",
        "3 ",
        "3.0",
        "",
        "9" * 5000,
        str(2**63),
        2**63,
        10**30,
        -3,
        0,
        3.0,
        True,
        None,
        [3],
        {"id": 3},
    ],
    ids=repr,
)
def test_a_user_id_that_is_not_a_plain_id_is_401(task, user_id):
    response = _bearer(_signed({"user_id": user_id, "exp": _future()})).get(TASKS)

    assert response.status_code == 401


def test_a_5000_digit_integer_user_id_is_401(task):
    payload = b'{"user_id": ' + b"9" * 5000 + b', "exp": ' + str(_future()).encode() + b"}"

    assert _bearer(_signed_raw(payload)).get(TASKS).status_code == 401


@pytest.mark.parametrize("user_id", [3, "3"])
def test_a_plain_user_id_as_integer_or_digit_string_is_accepted(task, user_id):
    response = _bearer(_signed({"user_id": user_id, "exp": _future()})).get(TASKS)

    assert response.status_code == 200
    assert response.json()["count"] == 1


@pytest.mark.parametrize("user_id", [2**63 - 1, str(2**63 - 1)])
def test_the_largest_bigint_user_id_is_accepted(db, user_id):
    assert _bearer(_signed({"user_id": user_id, "exp": _future()})).get(TASKS).status_code == 200


# --- 9. Token audience, issuer and lifetime --------------------------------------


def test_tokens_for_another_audience_or_issuer_are_401_once_configured(settings, task):
    settings.JWT_ISSUER = "https://auth.example.com"
    settings.JWT_AUDIENCE = "workflow_api"
    base = {"user_id": 3, "exp": _future(), "iss": "https://auth.example.com", "aud": "workflow_api"}

    assert _bearer(_signed(base)).get(TASKS).status_code == 200
    assert _bearer(_signed({**base, "aud": "billing"})).get(TASKS).status_code == 401
    assert _bearer(_signed({**base, "iss": "https://evil.example.com"})).get(TASKS).status_code == 401


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({"exp": 2**70}, 401),
        ({"iat": 0, "exp": 2**70}, 401),
        ({"iat": "now", "exp": "now+86401"}, 401),
        ({"exp": "now+86400+120"}, 401),
        ({"iat": "now", "exp": "now+86400"}, 200),
        ({"exp": "now+86000"}, 200),
    ],
    ids=["exp 2^70", "iat 0 exp 2^70", "iat+86401", "no iat, now+86520", "iat+86400", "no iat, now+86000"],
)
def test_token_lifetime_is_bounded_by_jwt_max_lifetime_seconds(task, claims, status):
    now = int(time.time())

    def resolve(value: object) -> object:
        if isinstance(value, str):
            return now + sum(int(part) for part in value.removeprefix("now").split("+") if part)
        return value

    token = _signed({"user_id": 3, **{name: resolve(value) for name, value in claims.items()}})

    assert _bearer(token).get(TASKS).status_code == status


def test_the_lifetime_limit_is_configurable(settings, task):
    settings.JWT_MAX_LIFETIME_SECONDS = 60

    assert _bearer(mint_token(user_id=3, lifetime=timedelta(minutes=5))).get(TASKS).status_code == 401
    assert _bearer(mint_token(user_id=3, lifetime=timedelta(seconds=60))).get(TASKS).status_code == 200


# --- 10. Caching ----------------------------------------------------------------------


def _directives(response) -> set[str]:
    return {part.strip() for part in response["Cache-Control"].split(",")}


def _vary(response) -> set[str]:
    return {part.strip().lower() for part in response.get("Vary", "").split(",")}


def test_api_answers_with_personal_data_are_not_cacheable_and_vary_on_the_caller(staff, assignee, task):
    for response in (
        staff.get(TICKETS),
        staff.get(f"{TICKETS}{task.ticket_id}/"),
        assignee.get(TASKS),
        assignee.get(f"{TASKS}{task.pk}/"),
        APIClient().get(TASKS),  # 401
        staff.get(f"{TASKS}999999/"),  # 404
        staff.get("/api/schema/"),
    ):
        assert {"private", "no-store"} <= _directives(response), response.wsgi_request.path
        assert {"authorization", "cookie"} <= _vary(response)


def test_session_and_cookie_token_answers_vary_on_cookie(task):
    session = APIClient()
    user = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    session.force_login(user)
    cookie = APIClient()
    cookie.cookies["access_token"] = mint_token(user_id=3)

    for response in (session.get(TICKETS), cookie.get(TASKS)):
        assert response.status_code == 200
        assert "cookie" in _vary(response)
        assert {"private", "no-store"} <= _directives(response)


# --- 11. Local staff accounts follow Django model permissions ----------------------------


def _local_staff(*permissions: str) -> APIClient:
    user = get_user_model().objects.create_user(
        f"staff-{len(permissions)}-{time.monotonic_ns()}", password=PASSWORD, is_staff=True
    )
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = APIClient()
    client.force_login(user)
    return client


def test_local_staff_without_permissions_reads_no_tickets_and_writes_no_configuration(task):
    client = _local_staff()

    assert client.get(TICKETS).status_code == 403
    assert client.get(f"{TICKETS}{task.ticket_id}/").status_code == 403
    assert client.post(ROLES, {"name": "Sneaky"}, format="json").status_code == 403
    assert client.delete(f"{ROLES}{task.current_step.role_id}/").status_code == 403
    assert client.get(TASKS).json()["count"] == 0  # like any account that is nobody's assignee
    assert client.get("/tasks/api/tasks/workflow_statistics/").status_code == 403
    assert client.post(f"{TASKS}{task.pk}/complete_task/").status_code == 403
    assert Roles.objects.filter(name="Sneaky").count() == 0


def test_local_staff_rights_follow_each_model_permission(task):
    readers = _local_staff("view_workflowticket", "view_task")
    role_writer = _local_staff("add_roles")
    task_changer = _local_staff("view_task", "change_task")

    assert readers.get(TICKETS).status_code == 200
    assert readers.get(TASKS).json()["count"] == 1
    assert readers.post(ROLES, {"name": "Sneaky"}, format="json").status_code == 403
    assert readers.post(f"{TASKS}{task.pk}/complete_task/").status_code == 403
    assert role_writer.post(ROLES, {"name": "Reviewer"}, format="json").status_code == 201
    assert role_writer.get(TICKETS).status_code == 403
    assert (
        role_writer.patch(f"{ROLES}{task.current_step.role_id}/", {"name": "X"}, format="json").status_code
        == 403
    )
    assert task_changer.post(f"{TASKS}{task.pk}/complete_task/").status_code == 200


def test_a_superuser_and_a_staff_token_keep_every_staff_right(task):
    superuser = APIClient()
    superuser.force_login(get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD))
    token_staff = _bearer(mint_token(user_id=1, is_staff=True))

    for client in (superuser, token_staff):
        assert client.get(TICKETS).status_code == 200
        assert client.get("/tasks/api/tasks/workflow_statistics/").status_code == 200


# --- 12. Login lockout and API throttles --------------------------------------------------


@pytest.fixture
def local_user(db):
    return get_user_model().objects.create_superuser("operator", "operator@example.com", PASSWORD)


def _login(client, path: str, password: str, address: str = "203.0.113.7", username: str = "operator"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.parametrize("path", ["/admin/login/", "/api-auth/login/"])
def test_five_wrong_passwords_lock_the_username_and_address_out_even_for_the_right_one(
    client, local_user, path
):
    answers = [_login(client, path, f"wrong-{attempt}").status_code for attempt in range(5)]
    right_password = _login(client, path, PASSWORD)

    assert answers[:4] == [200, 200, 200, 200]  # the form again, with an error
    assert answers[4] == 429
    assert right_password.status_code == 429
    assert "_auth_user_id" not in client.session


def test_login_failures_are_logged_without_username_address_or_password(client, local_user, caplog):
    caplog.set_level("INFO")
    for attempt in range(5):
        _login(client, "/api-auth/login/", f"wrong-password-{attempt}")

    logged = caplog.text

    assert "login failure" in logged
    for secret in ("operator", "203.0.113.7", "wrong-password-"):
        assert secret not in logged


def test_a_lockout_is_per_username_and_address_pair(client, local_user):
    get_user_model().objects.create_user("colleague", password=PASSWORD, is_staff=True)
    for attempt in range(5):
        _login(client, "/api-auth/login/", f"wrong-{attempt}")

    other_address = _login(APIClient(), "/api-auth/login/", PASSWORD, address="198.51.100.9")
    other_user = _login(APIClient(), "/api-auth/login/", PASSWORD, username="colleague")

    assert other_address.status_code == 302
    assert other_user.status_code == 302


def test_a_lockout_ends_after_the_configured_time(settings, client, local_user):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    for attempt in range(5):
        _login(client, "/api-auth/login/", f"wrong-{attempt}")
    assert _login(client, "/api-auth/login/", PASSWORD).status_code == 429

    time.sleep(2.2)  # the cool-off, and the locked-out attempt above that restarted it

    assert _login(client, "/api-auth/login/", PASSWORD).status_code == 302


def test_throttle_defaults_are_60_a_minute_anonymous_and_1000_per_user():
    assert django_settings.API_THROTTLE_ANON_RATE == "60/minute"
    assert django_settings.API_THROTTLE_USER_RATE == "1000/minute"


def test_a_non_staff_caller_over_the_rate_gets_429_with_retry_after(settings, assignee, task):
    settings.API_THROTTLE_USER_RATE = "5/minute"

    answers = [assignee.get(TASKS) for _ in range(6)]

    assert [answer.status_code for answer in answers] == [200] * 5 + [429]
    assert 0 < int(answers[-1]["Retry-After"]) <= 60
    # Another user has a counter of their own.
    assert _bearer(mint_token(user_id=6)).get(TASKS).status_code == 200


def test_staff_are_not_throttled(settings, staff, task):
    settings.API_THROTTLE_USER_RATE = "5/minute"
    settings.API_THROTTLE_ANON_RATE = "5/minute"

    assert {staff.get(TASKS).status_code for _ in range(20)} == {200}


def test_anonymous_and_bad_token_requests_over_the_rate_get_429(settings, db):
    settings.API_THROTTLE_ANON_RATE = "5/minute"
    forged = _bearer("not-a-token")

    answers = [APIClient().get(TASKS).status_code for _ in range(3)]
    answers += [forged.get(TASKS).status_code for _ in range(3)]
    other_address = APIClient().get(TASKS, REMOTE_ADDR="198.51.100.9")

    assert answers == [401] * 5 + [429]
    assert other_address.status_code == 401


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(settings, db):
    settings.API_THROTTLE_ANON_RATE = "2/minute"
    settings.TRUSTED_PROXY_COUNT = 1
    client = APIClient()

    def get(forwarded_for: str) -> int:
        return client.get(TASKS, HTTP_X_FORWARDED_FOR=forwarded_for).status_code

    # A client cannot pick its own address: only the entry the proxy appended counts.
    assert [get("1.1.1.1, 203.0.113.7"), get("2.2.2.2, 203.0.113.7"), get("203.0.113.7")] == [401, 401, 429]
    assert get("203.0.113.8") == 401


def test_throttle_counters_are_kept_in_redis_when_configured(settings, assignee, task):
    broker = django_settings.CELERY_BROKER_URL
    if not broker.startswith("redis://"):
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("REQUIRE_SERVICES=1 but no Redis broker is configured")
        pytest.skip("needs Redis (DJANGO_CELERY_BROKER_URL=redis://...)")
    prefix = f"throttle-test-{time.monotonic_ns()}"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": broker,
            "KEY_PREFIX": prefix,
        }
    }
    settings.API_THROTTLE_USER_RATE = "2/minute"
    from django.core.cache import cache

    answers = [assignee.get(TASKS).status_code for _ in range(3)]

    assert answers == [200, 200, 429]
    assert cache.get("throttle_user_token-3") is not None
    cache.delete("throttle_user_token-3")


# --- 15. Hardening ----------------------------------------------------------------------------


def _csp(response) -> dict[str, str]:
    policy = {}
    for directive in response["Content-Security-Policy"].split(";"):
        name, _, value = directive.strip().partition(" ")
        policy[name] = value
    return policy


def test_docs_page_has_a_csp_whose_nonce_is_on_its_only_inline_script(staff):
    response = staff.get("/api/docs/")
    page = response.content.decode()
    policy = _csp(response)
    nonce = re.search(r"'nonce-([^']+)'", policy["script-src"]).group(1)
    scripts = re.findall(r"<script([^>]*)>", page)

    assert response.status_code == 200
    assert policy["default-src"] == "'self'"
    assert "unsafe-inline" not in policy["script-src"] and "unsafe-eval" not in policy["script-src"]
    inline = [attrs for attrs in scripts if "src=" not in attrs]
    assert inline == [f' nonce="{nonce}"']
    for attrs in scripts:
        if "src=" in attrs:
            assert re.search(r'src="/static/', attrs), attrs  # the service's own files
    assert staff.get("/api/docs/")["Content-Security-Policy"] != response["Content-Security-Policy"]


def test_admin_pages_have_a_csp_and_load_scripts_only_from_the_service(local_user, client):
    client.force_login(local_user)
    for path in ("/admin/login/", "/admin/", "/admin/workflow/roles/add/"):
        response = client.get(path, follow=path == "/admin/login/")
        page = response.content.decode()

        assert response.status_code == 200, path
        assert "script-src 'self' 'nonce-" in response["Content-Security-Policy"]
        for attrs in re.findall(r"<script([^>]*)>", page):
            # Same origin ('self'): a path on this service, or JSON data that never runs.
            assert re.search(r'src="/(?!/)', attrs) or 'type="application/json"' in attrs, (path, attrs)


def test_head_health_answers_like_get(db):
    client = APIClient()

    get, head = client.get("/health/"), client.head("/health/")

    assert head.status_code == get.status_code
    assert head["Content-Type"] == get["Content-Type"]
    assert head.content == b""


def test_api_login_without_next_lands_on_the_docs(client, local_user):
    response = _login(client, "/api-auth/login/", PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == "/api/docs/"
    assert client.get(response["Location"]).status_code == 200
