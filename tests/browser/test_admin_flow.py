"""An administrator in a real browser: configure, deploy, find a failed ticket, fix it, open its task."""

import pytest
from django.contrib.auth.models import User

from conftest import ticket_payload
from task.models import Task
from tickets import tasks
from tickets.models import WorkflowTicket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-browser-admin-123"
TTS_NAME = "IT Support Technician"
TYPO = "it support technician"


def _pick_role(browser, row, name: str) -> None:
    """Choose a role in a step row's autocomplete box, as a user does: open, type, click the match."""
    row.find_element("css selector", ".select2-selection").click()
    search = browser.visible(".select2-container--open .select2-search__field")
    search.send_keys(name)
    option = browser.clickable(".select2-container--open .select2-results__option:not(.loading-results)")
    assert option.text == name, f"autocomplete offered {option.text!r}"
    option.click()


def test_admin_configures_deploys_fixes_a_failed_ticket_and_opens_its_task(browser, tts):
    User.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    tts.role(TTS_NAME, [3, 6, 7])
    tts.role(TYPO, [])

    with browser.step("log in"):
        browser.open("/admin/login/")
        browser.css("#id_username").send_keys("admin")
        browser.css("#id_password").send_keys(PASSWORD)
        browser.css("input[type=submit]").click()
        browser.visible("#site-name")
        assert "Site administration" in browser.text()

    with browser.step("create a role TTS does not know and see the warning"):
        browser.open("/admin/workflow/roles/add/")
        assert "Must equal the role's name in TTS exactly" in browser.text()
        browser.css("#id_name").send_keys(TYPO)
        browser.css("input[name=_save]").click()
        warning = browser.visible(".messagelist .warning").text
        assert f"TTS lists no users for role '{TYPO}'" in warning

    with browser.step("create a workflow with two inline steps that number themselves"):
        browser.open("/admin/workflow/workflows/add/")
        browser.css("#id_name").send_keys("Printers")
        browser.css("#id_department").send_keys("IT Department")
        browser.css("#id_category").send_keys("IT Support")
        browser.css("#id_is_published").click()
        browser.css("#id_status option[value=deployed]").click()
        add_row = browser.clickable("#steps-group .add-row a")
        add_row.click()
        add_row.click()
        rows = browser.all_css("#steps-group tr.form-row.dynamic-steps")
        assert [
            row.find_element("css selector", "input[name$='-order']").get_attribute("value") for row in rows
        ] == [
            "1",
            "2",
        ]
        for number, row in enumerate(rows):
            row.find_element("css selector", "input[name$='-name']").send_keys(f"Step {number + 1}")
            _pick_role(browser, row, TYPO)
        assert browser.horizontal_overflow() == 0, "the workflow form with its steps is wider than 1,366 px"
        browser.css("input[name=_save]").click()
        browser.visible(".messagelist .success")
        assert "Printers" in browser.text()

    with browser.step("the workflow list shows it live with two steps"):
        row = browser.visible("#result_list tbody tr")
        assert "IT Department / IT Support / (any: catch-all)" in row.text
        assert row.find_element("css selector", "td.field-live img").get_attribute("alt") == "True"
        assert row.find_element("css selector", "td.field-step_count").text == "2"
        assert browser.horizontal_overflow() == 0, "the workflow list is wider than 1,366 px"

    ticket = WorkflowTicket.objects.get(
        pk=tasks.receive_ticket.delay(ticket_payload("TX-BROWSER")).get()["ticket_id"]
    )

    with browser.step("see the ticket's failure reason"):
        browser.open("/admin/tickets/workflowticket/")
        row = browser.visible("#result_list tbody tr")
        assert "TX-BROWSER" in row.text
        assert "No users for role" in row.text
        assert browser.horizontal_overflow() == 0, "the ticket list is wider than 1,366 px"
        browser.open("/admin/tickets/workflowticket/unallocated/")
        assert "No users for role" in browser.css("#unallocated_reasons").text

    with browser.step("fix the role's name"):
        browser.open("/admin/workflow/roles/")
        browser.driver.find_element("link text", TYPO).click()
        name = browser.visible("#id_name")
        name.clear()
        name.send_keys(TTS_NAME)
        browser.css("input[name=_save]").click()
        browser.visible(".messagelist .success")
        assert not browser.all_css(".messagelist .warning")

    with browser.step("retry allocation from the ticket list"):
        browser.open("/admin/tickets/workflowticket/")
        browser.visible(f"#result_list input[name=_selected_action][value='{ticket.pk}']").click()
        browser.css("select[name=action] option[value=retry_allocation]").click()
        browser.css("button[name=index]").click()
        assert "Allocation re-queued for 1 ticket(s)." in browser.visible(".messagelist .success").text
        assert "No users for role" not in browser.css("#result_list").text

    with browser.step("open the task page from the ticket"):
        browser.open(f"/admin/tickets/workflowticket/{ticket.pk}/change/")
        task = Task.objects.get(ticket=ticket)
        browser.driver.find_element("link text", f"task {task.pk}").click()
        page = browser.visible("#content").text
        assert "TX-BROWSER" in page
        assert "1. Step 1 (role IT Support Technician; step 1 of 2 by order)" in page
        assignees = browser.css(".field-assignees table").text
        for user_id in ("3", "6", "7"):
            assert f"{user_id} IT Support Technician Assigned" in assignees
        assert browser.css(f".object-tools a[href$='/task/task/{task.pk}/reassign/']").is_displayed()
        assert browser.horizontal_overflow() == 0, "the task page is wider than 1,366 px"

    with browser.step("the task list fits the screen"):
        browser.open("/admin/task/task/")
        assert "TX-BROWSER" in browser.visible("#result_list").text
        assert browser.horizontal_overflow() == 0, "the task list is wider than 1,366 px"


def test_operator_pages_answer_and_fit_the_screen(browser, tts, role):
    from conftest import make_workflow

    User.objects.create_superuser("ops", "ops@example.com", PASSWORD)
    make_workflow(name="Catch-all", steps=[role])
    tts.role(role.name, [3, 6, 7])

    with browser.step("log in"):
        browser.open("/admin/login/")
        browser.css("#id_username").send_keys("ops")
        browser.css("#id_password").send_keys(PASSWORD)
        browser.css("input[type=submit]").click()
        browser.visible("#site-name")

    with browser.step("the routing tester explains a fallback"):
        browser.open("/admin/workflow/workflows/")
        browser.driver.find_element("css selector", ".object-tools a[href$='routing-tester/']").click()
        browser.visible("#id_department").send_keys("IT Department")
        browser.css("#id_category").send_keys("IT Support")
        browser.css("#id_sub_category").send_keys("Printers")
        browser.css("#routing_tester input[type=submit]").click()
        result = browser.visible("#routing_result").text
        assert "MATCH: FALLBACK" in result.upper()
        assert "Catch-all" in result
        assert browser.horizontal_overflow() == 0, "the routing tester is wider than 1,366 px"

    with browser.step("the role's workload page says who is next"):
        browser.driver.find_element("link text", "workload").click()
        assert "[3, 6, 7], [3, 6, 7]" in browser.visible("#workload_next").text
        assert browser.horizontal_overflow() == 0, "the workload page is wider than 1,366 px"
