"""The OpenAPI description of the privacy endpoints: erasure and the two exports."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers

from .openapi import FIELD_ERRORS_SCHEMA, UNAVAILABLE, USER, access_errors, error

TAGS = ["privacy"]
EXPORT_ACCESS_ERRORS = access_errors("export")
ERASE_ACCESS_ERRORS = access_errors("erase")
USER_PATH = OpenApiParameter("user_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The viewer's UUID.")
CSV_EXAMPLE = (
    "id,user_id,movie_id,event_type,position_seconds,event_time,session_id,metadata,created_at\r\n"
    f'"0e4c7a2b-6d8f-4a1c-9e3b-5f7d9b1c3e57","{USER}","9b2d4e6f-1a3c-4b5d-8e7f-2a4c6e8b0d13","start",0,'
    '"2026-11-28T20:04:05Z",,"{""device"": ""tv""}","2026-11-28T20:04:06Z"\r\n'
)
NDJSON_EXAMPLE = (
    '{"id":"0e4c7a2b-6d8f-4a1c-9e3b-5f7d9b1c3e57","user_id":"' + USER + '",'
    '"movie_id":"9b2d4e6f-1a3c-4b5d-8e7f-2a4c6e8b0d13","event_type":"start","position_seconds":0,'
    '"event_time":"2026-11-28T20:04:05Z","session_id":null,"metadata":"{\\"device\\": \\"tv\\"}",'
    '"created_at":"2026-11-28T20:04:06Z"}\n'
)


def _file(description, example):
    return OpenApiResponse(OpenApiTypes.BINARY, description=description, examples=[OpenApiExample("file", example)])


def _bad_parameter(example):
    return OpenApiResponse(
        FIELD_ERRORS_SCHEMA,
        description="A parameter is malformed or out of range; the body names it.",
        examples=[OpenApiExample("bad parameter", example)],
    )


ATTACHMENT = (
    " An attachment (`Content-Disposition: attachment`), streamed as the engine writes it: every "
    "column of the stored events, oldest first (ties by id); times in UTC (`2026-11-28T20:04:05Z`); "
    "`metadata` is the stored JSON text; a missing session is an empty CSV field or null. A failure "
    "after the first bytes cuts the download short (an incomplete chunked transfer)."
)

user_events_export = extend_schema_view(
    get=extend_schema(
        operation_id="user_events_export",
        tags=TAGS,
        summary="Every stored event of one viewer, as a file",
        description="JSON lines (`format=ndjson`, the default) or CSV (`format=csv`, RFC 4180 with a "
        "header row)." + ATTACHMENT,
        parameters=[
            USER_PATH,
            OpenApiParameter("format", str, enum=["ndjson", "csv"], default="ndjson", description="File format."),
        ],
        responses={
            (200, "application/x-ndjson"): _file("The viewer's events, one JSON object a line.", NDJSON_EXAMPLE),
            (200, "text/csv"): _file("The viewer's events, a header row and one row an event.", CSV_EXAMPLE),
            400: _bad_parameter({"user_id": ["Must be a valid UUID."]}),
            **EXPORT_ACCESS_ERRORS,
            503: UNAVAILABLE,
        },
    )
)

events_export = extend_schema_view(
    get=extend_schema(
        operation_id="events_export",
        tags=TAGS,
        summary="The raw events of a window, as a file",
        description="The events whose time falls on the local dates `from` … `to` of `tz` (at most 366 "
        "dates), optionally of one viewer, movie or type. CSV (the default), JSON lines or Parquet "
        "(UUIDs as the Arrow UUID type, times as UTC timestamps)." + ATTACHMENT,
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, required=True, description="First local date (inclusive)."),
            OpenApiParameter("to", OpenApiTypes.DATE, required=True, description="Last local date (inclusive)."),
            OpenApiParameter("tz", str, default="UTC", description="IANA time zone of the dates."),
            OpenApiParameter(
                "format", str, enum=["csv", "ndjson", "parquet"], default="csv", description="File format."
            ),
            OpenApiParameter("user_id", OpenApiTypes.UUID, description="Only this viewer's events."),
            OpenApiParameter("movie_id", OpenApiTypes.UUID, description="Only this movie's events."),
            OpenApiParameter("event_type", str, description="Only this type (`start`, `progress`, `finish` or "
                             "another accepted spelling)."),
        ],
        responses={
            (200, "text/csv"): _file("The window's events, a header row and one row an event.", CSV_EXAMPLE),
            (200, "application/x-ndjson"): _file("The window's events, one JSON object a line.", NDJSON_EXAMPLE),
            (200, "application/vnd.apache.parquet"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The window's events as one Parquet file."
            ),
            400: _bad_parameter({"to": ["Must not be before from."]}),
            **EXPORT_ACCESS_ERRORS,
            503: UNAVAILABLE,
        },
    )
)

user_erase = extend_schema_view(
    delete=extend_schema(
        operation_id="user_erase",
        tags=TAGS,
        summary="Erase every stored event of one viewer",
        description="Removes the viewer's events from the raw table, the de-duplication index and "
        "every aggregate; from the answer on, every endpoint answers as if they had never been "
        "stored. The viewer goes on the suppression list: their later events (retries, Kafka "
        "replays, new activity) are acknowledged as usual but not stored. Each erasure is recorded "
        "(admin: Privacy → Erasures). Erasing again answers `events_deleted` 0. Irreversible.",
        parameters=[USER_PATH],
        request=None,
        responses={
            200: inline_serializer(
                "ErasureResult",
                {"user_id": serializers.UUIDField(), "events_deleted": serializers.IntegerField(min_value=0)},
            ),
            400: _bad_parameter({"user_id": ["Must be a valid UUID."]}),
            **ERASE_ACCESS_ERRORS,
            501: error("Not available on a ClickHouse cluster yet.",
                       "Erasure is not available on a ClickHouse cluster yet (docs/api.md, Erasure)."),
            503: UNAVAILABLE,
        },
        examples=[
            OpenApiExample("erased", {"user_id": USER, "events_deleted": 1042}, response_only=True),
            OpenApiExample("again", {"user_id": USER, "events_deleted": 0}, response_only=True),
        ],
    )
)
