"""A frontend developer with only a JWT: open the docs, authorize with it, call the task list."""

import pytest

from conftest import make_task, make_workflow
from workflow.models import Roles
from workflow_api.authentication import mint_token

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_swagger_page_authorizes_with_a_bearer_token_and_lists_the_callers_tasks(browser):
    role = Roles.objects.create(name="IT Support Technician")
    make_task(make_workflow(steps=[role]), number="TX-SWAGGER", users=[{"userID": 3}])
    token = mint_token(user_id=3)

    with browser.step("open the docs without logging in"):
        browser.open("/api/docs/")
        browser.visible(".swagger-ui .info .title")
        assert "workflow_api" in browser.css(".swagger-ui .info").text

    with browser.step("authorize with the JWT, Bearer offered first"):
        browser.clickable(".swagger-ui .btn.authorize").click()
        dialog = browser.visible(".swagger-ui .dialog-ux .modal-ux")
        first = dialog.find_element("css selector", ".auth-container h4")
        assert "bearerAuth" in first.text, f"first scheme offered: {first.text!r}"
        assert "mint_dev_token" in dialog.text
        field = dialog.find_element("css selector", ".auth-container input[type=text], .auth-container input")
        field.send_keys(token)
        dialog.find_element("css selector", ".auth-container .btn.modal-btn.auth.authorize").click()
        browser.clickable(".swagger-ui .dialog-ux .btn-done").click()

    with browser.step("call the task list"):
        browser.clickable("#operations-tasks-tasks_api_tasks_list .opblock-summary").click()
        browser.clickable("#operations-tasks-tasks_api_tasks_list .try-out__btn").click()
        browser.clickable("#operations-tasks-tasks_api_tasks_list .execute").click()
        status = browser.visible(
            "#operations-tasks-tasks_api_tasks_list .live-responses-table tbody td.response-col_status", 15
        )
        assert status.text.strip().startswith("200"), status.text
        body = browser.css(
            "#operations-tasks-tasks_api_tasks_list .live-responses-table tbody td.response-col_description"
        ).text
        assert "TX-SWAGGER" in body
        assert (
            "Authorization: Bearer"
            in browser.css("#operations-tasks-tasks_api_tasks_list .curl-command").text
        )

    with browser.step("the page ran under its Content-Security-Policy without violations"):
        errors = [message for message in browser.console_errors() if "Content Security Policy" in message]
        assert errors == []
