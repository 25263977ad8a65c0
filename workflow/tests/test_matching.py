import pytest

from conftest import make_workflow
from workflow.models import Workflows
from workflow.selectors import find_matching_workflow

pytestmark = pytest.mark.django_db


def test_exact_department_category_and_sub_category_match_wins(role):
    make_workflow(name="Generic", steps=[role])
    specific = make_workflow(name="VPN", sub_category="Technical Assistance", steps=[role])

    assert find_matching_workflow("IT Department", "IT Support", "Technical Assistance") == specific


def test_falls_back_to_department_and_category_when_no_sub_category_matches(role):
    generic = make_workflow(name="Generic", steps=[role])

    assert find_matching_workflow("IT Department", "IT Support", "Something else") == generic


def test_fallback_prefers_the_generic_workflow_over_other_sub_categories(role):
    make_workflow(name="Hardware", sub_category="Hardware", steps=[role])
    generic = make_workflow(name="Generic", steps=[role])

    assert find_matching_workflow("IT Department", "IT Support", "Software") == generic


def test_fallback_without_a_generic_workflow_takes_the_oldest_of_the_category(role):
    first = make_workflow(name="Hardware", sub_category="Hardware", steps=[role])
    make_workflow(name="Network", sub_category="Network", steps=[role])

    assert find_matching_workflow("IT Department", "IT Support", "Software") == first


def test_several_exact_matches_resolve_to_the_oldest(role):
    first = make_workflow(name="A", sub_category="VPN", steps=[role])
    make_workflow(name="B", sub_category="VPN", steps=[role])

    assert find_matching_workflow("IT Department", "IT Support", "VPN") == first


@pytest.mark.parametrize(
    "fields",
    [
        {"is_published": False},
        {"status": Workflows.Status.DRAFT},
        {"status": Workflows.Status.PAUSED},
    ],
)
def test_unpublished_or_undeployed_workflows_never_match(role, fields):
    make_workflow(name="Hidden", steps=[role], **fields)

    assert find_matching_workflow("IT Department", "IT Support", "") is None


def test_other_department_or_category_does_not_match(role):
    make_workflow(steps=[role])

    assert find_matching_workflow("HR Department", "IT Support", "") is None
    assert find_matching_workflow("IT Department", "Payroll", "") is None
