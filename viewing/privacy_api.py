"""HTTP endpoints of the privacy work: erasing a viewer (scope `erase`), and a viewer's events
and a window's events as streamed attachments (scope `export`).

Views only: the parameters are validated here, the erasure lives in viewing.erasure, the SQL
and the streaming of exports in viewing.exports, the OpenAPI description in
viewing.privacy_openapi.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clickhouse_driver import errors as driver_errors
from django.core.validators import MaxValueValidator, MinValueValidator
from django.http import StreamingHttpResponse
from rest_framework import exceptions, serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics_site.access.models import ApiKey
from analytics_site.exceptions import StorageUnavailable

from . import exports, privacy_openapi
from .erasure import ErasureNotNow, ErasureUnsupported, user_erase
from .events import EVENT_TYPES
from .serializers import UserIdField

log = logging.getLogger(__name__)
MAX_DATES = 366
# The dates a DateTime column can hold (1970-01-01 … 2106-02-07), whole local days of them.
FIRST_DATE, LAST_DATE = date(1970, 1, 2), date(2106, 2, 5)
DATE_RANGE = [MinValueValidator(FIRST_DATE), MaxValueValidator(LAST_DATE)]


class JsonErrorsOnly(BaseContentNegotiation):
    """An export's body is the file; DRF renders only its errors, always as JSON. `?format=`
    chooses the file's format (validated with the other parameters), not a DRF renderer."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class TimeZoneField(serializers.CharField):
    default_error_messages = {"unknown": "Unknown time zone; use an IANA name such as Europe/Moscow."}

    def to_internal_value(self, data):
        name = super().to_internal_value(data)
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            self.fail("unknown")
        return name


def _first_then_rest(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield first
        yield from rest
    except driver_errors.Error:
        # The status line is sent: all that is left is to cut the transfer short, so the
        # client sees an incomplete download rather than a complete-looking file.
        log.exception("Export failed mid-stream")
        raise
    finally:
        rest.close()


def attachment(pieces: Iterator[bytes], *, output: str, filename: str) -> StreamingHttpResponse:
    """The export as a streamed attachment. The first piece is read before answering, so a
    query the engine refuses at once is a 503 and not a broken download."""
    try:
        first = next(pieces, b"")
    except driver_errors.Error:
        log.exception("Export failed")
        raise StorageUnavailable() from None
    fmt = exports.FORMATS[output]
    response = StreamingHttpResponse(_first_then_rest(first, pieces), content_type=fmt.content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt.extension}"'
    response["X-Accel-Buffering"] = "no"  # a proxy in front passes the pieces on as they come
    return response


class NotImplementedHere(exceptions.APIException):
    status_code = status.HTTP_501_NOT_IMPLEMENTED
    default_code = "not_implemented"


@privacy_openapi.user_erase
class UserEraseApi(APIView):
    access_scope = "erase"

    class FilterSerializer(serializers.Serializer):
        user_id = UserIdField()

    def delete(self, request, user_id):
        filters = self.FilterSerializer(data={"user_id": user_id})
        filters.is_valid(raise_exception=True)
        key = request.auth if isinstance(request.auth, ApiKey) else None
        requested_by = f"API key {key.prefix} ({key.name})" if key else "API, open mode (DEBUG on, no key exists)"
        try:
            result = user_erase(
                user_id=filters.validated_data["user_id"], requested_by=requested_by,
                api_key_prefix=key.prefix if key else "",
            )
        except ErasureUnsupported as e:
            raise NotImplementedHere(str(e)) from None
        except ErasureNotNow as e:
            raise StorageUnavailable(str(e)) from None
        return Response(result)


class ExportApi(APIView):
    access_scope = "export"
    content_negotiation_class = JsonErrorsOnly
    renderer_classes = [JSONRenderer]


@privacy_openapi.user_events_export
class UserEventsExportApi(ExportApi):
    class FilterSerializer(serializers.Serializer):
        user_id = UserIdField()
        format = serializers.ChoiceField(
            choices=["ndjson", "csv"], default="ndjson", help_text="ndjson (JSON lines, the default) or csv."
        )

    def get(self, request, user_id):
        filters = self.FilterSerializer(data={**request.query_params.dict(), "user_id": user_id})
        filters.is_valid(raise_exception=True)
        user_id, output = filters.validated_data["user_id"], filters.validated_data["format"]
        pieces = exports.user_events_export(user_id=user_id, output=output)
        return attachment(pieces, output=output, filename=f"user_{user_id}_events")


class WindowFilterSerializer(serializers.Serializer):
    locals()["from"] = serializers.DateField(
        source="date_from", validators=DATE_RANGE, help_text="First local date of the window, YYYY-MM-DD (inclusive)."
    )
    to = serializers.DateField(
        source="date_to", validators=DATE_RANGE, help_text="Last local date of the window, YYYY-MM-DD (inclusive)."
    )
    tz = TimeZoneField(default="UTC", help_text="IANA time zone of the dates (default UTC).")
    format = serializers.ChoiceField(
        choices=["csv", "ndjson", "parquet"], default="csv", help_text="csv (the default), ndjson or parquet."
    )
    user_id = UserIdField(required=False, help_text="Only this viewer's events.")
    movie_id = UserIdField(required=False, help_text="Only this movie's events.")
    event_type = serializers.ChoiceField(
        choices=sorted(EVENT_TYPES), required=False, help_text="Only this type (any accepted spelling)."
    )

    def validate(self, data):
        if data["date_to"] < data["date_from"]:
            raise serializers.ValidationError({"to": ["Must not be before from."]})
        if (data["date_to"] - data["date_from"]).days + 1 > MAX_DATES:
            raise serializers.ValidationError({"to": [f"A window has at most {MAX_DATES} dates."]})
        if "event_type" in data:
            data["event_type"] = EVENT_TYPES[data["event_type"]]
        return data


@privacy_openapi.events_export
class EventsExportApi(ExportApi):
    FilterSerializer = WindowFilterSerializer

    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        window = dict(filters.validated_data)
        output = window.pop("format")
        pieces = exports.window_events_export(output=output, **window)
        return attachment(pieces, output=output, filename=f"events_{window['date_from']}_{window['date_to']}")
