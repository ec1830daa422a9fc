"""API errors as JSON: domain exceptions, the DRF exception handler, a JSON error middleware."""

import logging

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


def database_error_summary(error):
    """One line saying why a database call failed: clickhouse-driver puts "Code: N." on the
    first line and the server's message on the last."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return (lines[-1] if lines else type(error).__name__)[:300]


def api_exception_handler(exc, context):
    """DRF's handler, plus: a body over the limit is 413 and a failing ClickHouse is 503,
    both as JSON (DRF would re-raise them into Django's HTML error pages)."""
    # Imported here: rest_framework.views imports the parsers, which import this module.
    from rest_framework.views import exception_handler

    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, DatabaseError):
        logger.exception("ClickHouse query failed")
        exc = StorageUnavailable()
    return exception_handler(exc, context)


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
