"""API errors as JSON: domain exceptions, the DRF exception handler, a JSON error middleware."""

import logging
import re

from clickhouse_driver import errors as driver_errors
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import JsonResponse
from rest_framework import exceptions, status

logger = logging.getLogger(__name__)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is larger than 10 MiB."
    default_code = "payload_too_large"


class StorageUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The analytics storage (ClickHouse) is unavailable; try again."
    default_code = "storage_unavailable"


class StoreFailed(exceptions.APIException):
    """ClickHouse refused or failed a write: nothing of the request is acknowledged."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The analytics storage (ClickHouse) could not store the events; nothing of this request was stored. Try again."
    default_code = "store_failed"


class StorageFull(exceptions.APIException):
    """ClickHouse has no disk space left for the write (NOT_ENOUGH_SPACE)."""

    status_code = status.HTTP_507_INSUFFICIENT_STORAGE
    default_detail = "The analytics storage (ClickHouse) is out of disk space; nothing of this request was stored. Try again later."
    default_code = "storage_full"


# ClickHouse ends its messages with the error's name: "... (NOT_ENOUGH_SPACE)".
_ERROR_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)\s*$")
_CODE_NAMES = {
    value: name for name, value in vars(driver_errors.ErrorCodes).items() if name.isupper() and isinstance(value, int)
}
NOT_ENOUGH_SPACE = driver_errors.ErrorCodes.NOT_ENOUGH_SPACE


def storage_error_cause(error: BaseException) -> tuple[int | None, str]:
    """The ClickHouse error under a database error (Django's wraps the dbapi's, which wraps
    clickhouse-driver's): its code and name, ("243", "NOT_ENOUGH_SPACE"). A disk that filled
    while a part was written (ENOSPC) counts as NOT_ENOUGH_SPACE."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        code = getattr(error, "code", None)
        if isinstance(error, driver_errors.Error) and code is not None:
            message = str(getattr(error, "message", "") or error)
            if "No space left on device" in message:
                return NOT_ENOUGH_SPACE, "NOT_ENOUGH_SPACE"
            found = _ERROR_NAME.search(message.strip().splitlines()[-1] if message.strip() else "")
            return code, found.group(1) if found else _CODE_NAMES.get(code, type(error).__name__)
        error = error.__cause__ or error.__context__
    return None, "UNKNOWN"


def database_error_summary(error):
    """One line saying why a database call failed: clickhouse-driver puts "Code: N." on the
    first line and the server's message on the last."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[-1] if lines else type(error).__name__)[:300]


def api_exception_handler(exc, context):
    """DRF's handler, plus: a body over the limit is 413 and a failing ClickHouse is 503 (507
    when its disk is full), all as JSON (DRF would re-raise them into Django's HTML error
    pages). A ClickHouse error names its cause by ClickHouse's error name ("cause":
    "TOO_MANY_PARTS"); its message, which may quote data, is logged, never sent."""
    # Imported here: rest_framework.views imports the parsers, which import this module.
    from rest_framework.views import exception_handler

    cause = None
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, DatabaseError):
        code, cause = storage_error_cause(exc)
        request = context.get("request")
        writing = request is not None and request.method == "POST"
        logger.exception("ClickHouse %s failed (%s)", "write" if writing else "query", cause)
        if code == NOT_ENOUGH_SPACE:
            exc = StorageFull()
        else:
            exc = StoreFailed() if writing else StorageUnavailable()
    response = exception_handler(exc, context)
    if cause is not None and response is not None:
        response.data["cause"] = cause
    return response


class JsonErrorsMiddleware:
    """Errors outside the API views (unknown URLs, uncaught exceptions) become JSON too, with
    DEBUG on or off, instead of Django's HTML pages. The admin keeps its HTML."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and not request.path.startswith("/admin/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            return JsonResponse({"detail": response.reason_phrase}, status=response.status_code)
        return response

    def process_exception(self, request, exception):
        # Without this, Django answers a too-big body read outside DRF with a plain 400.
        if isinstance(exception, RequestDataTooBig):
            return JsonResponse({"detail": PayloadTooLarge.default_detail}, status=413)
        return None
