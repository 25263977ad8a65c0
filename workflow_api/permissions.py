"""Who may do what through the API; the rules are listed in README's "API and security"."""

from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.views import APIView


def is_staff(user: object) -> bool:
    """A Django staff account, or a token whose `is_staff` claim is true."""
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_staff", False))


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
