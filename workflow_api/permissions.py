"""Who may do what through the API; the rules are listed in README's "API and security"."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.base_user import AbstractBaseUser
from rest_framework import permissions
from rest_framework.request import Request

if TYPE_CHECKING:
    from rest_framework.views import APIView

# Set on a local account by workflow_api.authentication.SessionAuthentication,
# for the request being served: whether it has staff rights on that view.
API_STAFF_RIGHTS = "api_staff_rights"
_ACTION_BY_METHOD = {"POST": "add", "PUT": "change", "PATCH": "change", "DELETE": "delete"}


def _names_one_object(view: APIView) -> bool:
    lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", None)
    return bool(lookup) and lookup in (getattr(view, "kwargs", None) or {})


def required_model_permission(request: Request, view: APIView) -> str | None:
    """The Django permission admin would ask for this request: `<app>.<action>_<model>` of the view's model.

    Reads need view_, writes add_/change_/delete_ as in admin; a POST to one
    object (a task action such as assign_user) changes it. None when the view
    has no model (the schema and docs).
    """
    model = getattr(getattr(view, "queryset", None), "model", None)
    if model is None:
        return None
    if request.method in permissions.SAFE_METHODS:
        action = "view"
    elif request.method == "POST" and _names_one_object(view):
        action = "change"
    else:
        action = _ACTION_BY_METHOD.get(request.method or "", "change")
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


def is_staff(user: object) -> bool:
    """Staff rights for the current request.

    A token whose `is_staff` claim is true: every staff right. A local Django
    account: `is_staff` together with the Django model permission this request
    needs (see `required_model_permission`), as admin decides.
    """
    if not getattr(user, "is_authenticated", False):
        return False
    if isinstance(user, AbstractBaseUser):
        # Decided when the session was authenticated for this view; a local
        # account that did not come through that check gets no staff rights.
        return bool(getattr(user, API_STAFF_RIGHTS, False))
    return bool(getattr(user, "is_staff", False))


def local_account_staff_rights(user: AbstractBaseUser, request: Request, view: APIView | None) -> bool:
    """Whether a local account acts as staff on `view` for this request."""
    if not (user.is_active and getattr(user, "is_staff", False)):
        return False
    permission = required_model_permission(request, view) if view is not None else None
    return permission is None or user.has_perm(permission)


def caller_user_id(user: object) -> int | None:
    """The id task assignments name the caller by (`userID`): a token's user_id.

    Assignments name users of the ecosystem's auth service; a local Django
    account's pk is another numbering, so a non-staff local account is no one's
    assignee.
    """
    if not getattr(user, "is_authenticated", False):
        return None
    return getattr(user, "user_id", None)


class IsStaff(permissions.BasePermission):
    message = "Only staff may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_staff(request.user)


class IsStaffOrReadOnly(permissions.BasePermission):
    """Any authenticated caller reads; only staff write."""

    message = "Only staff may change this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not getattr(request.user, "is_authenticated", False):
            return False
        return request.method in permissions.SAFE_METHODS or is_staff(request.user)


def actor_id(user: object) -> str:
    """How a task's history names the caller: a token's user id, or `admin:<pk>` for a local account."""
    user_id = caller_user_id(user)
    if user_id is not None:
        return str(user_id)
    return f"admin:{getattr(user, 'pk', '')}"
