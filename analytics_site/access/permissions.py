"""Who may call what: a view names its scope (`access_scope = "ingest"` or `"read"`); a key
needs that scope, a staff session may read, and with DEBUG on and no key in the database
(the `make run` default) everything is open and the server said so at start-up."""

import logging

from django.conf import settings
from rest_framework import exceptions, permissions

from .models import ApiKey

log = logging.getLogger(__name__)

KEY_REQUIRED = "An API key is required: send the header 'Authorization: Api-Key <key>'."


def access_open():
    """True only with DEBUG on and no API key created yet (docs/operations.md, The open mode of `make run`)."""
    return settings.DEBUG and not ApiKey.objects.exists()


def log_access_mode():
    """One line at server start saying whether the API needs keys."""
    try:
        keys = ApiKey.objects.filter(revoked=False).count()
        is_open = access_open()
    except Exception as e:  # no migrations yet: say so, but let the server start (/ready tells)
        log.warning("Could not read the API keys (%s); has `manage.py migrate` run?", e)
        return
    if is_open:
        log.warning(
            "API access is OPEN: DJANGO_DEBUG is on and no API key exists, so every API request "
            "is served without a key. Create one (.venv/bin/python manage.py create_api_key --name NAME "
            "--scope ingest --scope read) or turn DJANGO_DEBUG off to require keys."
        )
    else:
        log.info("API keys required (%d active).", keys)


def _is_staff(user):
    return bool(user is not None and user.is_active and user.is_staff)


class ScopedAccess(permissions.BasePermission):
    """The view's `access_scope` decides. A view without one is refused to everybody."""

    def has_permission(self, request, view):
        scope = getattr(view, "access_scope", None)
        if isinstance(request.auth, ApiKey):
            if scope is not None and request.auth.has_scope(scope):
                return True
            self.message = f"This API key does not have the '{scope}' scope."
            return False
        if scope == "read" and _is_staff(request.user):
            return True
        if access_open():
            return True
        if request.user is not None:  # logged in, but not allowed
            self.message = "Staff sessions may only read the analytics."
            return False
        raise exceptions.NotAuthenticated(KEY_REQUIRED)


class DocsAccess(permissions.BasePermission):
    """/api/schema/, /docs, /redoc: open with DEBUG on; otherwise any valid key or staff."""

    def has_permission(self, request, view):
        if settings.DEBUG or isinstance(request.auth, ApiKey) or _is_staff(request.user):
            return True
        if request.user is not None:
            self.message = "The API documentation is for staff and API key holders."
            return False
        raise exceptions.NotAuthenticated(KEY_REQUIRED)
