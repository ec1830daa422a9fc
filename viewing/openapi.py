"""The OpenAPI description of the HTTP API: error bodies, examples and one decorator per
endpoint, so viewing/views.py holds only what runs.

An analytics endpoint is documented by `analytics(...)`: its FilterSerializer becomes the
query parameters, its OutputSerializer the 200 body, and the errors every analytics read
shares (400, 401, 403, 429, 503) are added.
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import is_list_serializer
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)

from analytics_site.exceptions import PayloadTooLarge, StorageFull, StorageUnavailable, StoreFailed

from .renderers import csv_table
from .serializers import (
    BatchAcceptedSerializer,
    ErrorSerializer,
    EventBatchSerializer,
    EventInputSerializer,
    HealthSerializer,
    StoredEventSerializer,
)

TAGS = ["analytics"]
USER = "5f1c7c9e-3b2a-4d8e-9a51-0c6f2b7d8e11"
MOVIE = "9b2d4e6f-1a3c-4b5d-8e7f-2a4c6e8b0d13"
SESSION = "c3d5e7f9-2b4d-4f6a-8c0e-1a3b5c7d9e24"
EVENT_ID = "0e4c7a2b-6d8f-4a1c-9e3b-5f7d9b1c3e57"

# --- Error bodies -----------------------------------------------------------------------------
FIELD_ERRORS_SCHEMA = {
    "type": "object",
    "description": "DRF-style errors: each offending field (or parameter) with its messages.",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
DETAIL_SCHEMA = {
    "type": "object",
    "description": "One message for the whole request (malformed JSON, too large, ...).",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
EVENT_ERRORS_SCHEMA = {"anyOf": [FIELD_ERRORS_SCHEMA, DETAIL_SCHEMA]}
BATCH_ERRORS_SCHEMA = {
    "type": "object",
    "description": "`errors`: one entry per item, {} for valid items (invalid batches); or "
    "`non_field_errors` when the body is not an array of 1 to 10,000 events; or `detail` "
    "for malformed JSON.",
    "properties": {
        "errors": {"type": "array", "items": FIELD_ERRORS_SCHEMA},
        "non_field_errors": {"type": "array", "items": {"type": "string"}},
        "detail": {"type": "string"},
    },
}


def error(description, detail):
    """A documented error answer with a `{"detail": ...}` body."""
    return OpenApiResponse(
        ErrorSerializer, description=description, examples=[OpenApiExample(description, {"detail": detail})]
    )


def access_errors(scope):
    """401/403/429: a key (or staff session) is checked before anything else."""
    return {
        401: error("No API key, or one that is unknown, revoked or expired.", "Invalid API key."),
        403: error(f"The API key lacks the '{scope}' scope.", f"This API key does not have the '{scope}' scope."),
        429: error(
            "Too many requests for this key and scope; the Retry-After header says when to retry.",
            "Request was throttled. Expected available in 12 seconds.",
        ),
    }


STORAGE_ERROR_SCHEMA = {
    "type": "object",
    "description": "ClickHouse failed: `cause` is ClickHouse's name of the error (its message is logged).",
    "properties": {"detail": {"type": "string"}, "cause": {"type": "string"}},
    "required": ["detail", "cause"],
}


def storage_error(description, detail, cause):
    return OpenApiResponse(STORAGE_ERROR_SCHEMA, description=description,
                           examples=[OpenApiExample(cause, {"detail": detail, "cause": cause})])


UNAVAILABLE = storage_error("ClickHouse cannot be queried.", StorageUnavailable.default_detail, "NETWORK_ERROR")
# A write answers 503/507 only when nothing of the request was acknowledged.
STORE_FAILED = storage_error(
    "ClickHouse failed to store the events (unreachable, memory limit, too many parts, ...); nothing of "
    "the request is acknowledged: send it again.", StoreFailed.default_detail, "TOO_MANY_PARTS",
)
STORAGE_FULL = storage_error(
    "ClickHouse has no disk space left; nothing of the request is acknowledged: send it again later.",
    StorageFull.default_detail, "NOT_ENOUGH_SPACE",
)
TOO_LARGE = error("The body is larger than 10 MiB.", PayloadTooLarge.default_detail)
UNSUPPORTED = error("The body is not application/json.", 'Unsupported media type "text/plain" in request.')
INGEST_ACCESS_ERRORS = access_errors("ingest")
READ_ACCESS_ERRORS = access_errors("read")
PARAMETER_ERROR = OpenApiResponse(
    FIELD_ERRORS_SCHEMA,
    description="A query parameter is malformed or out of range; the body names it.",
    examples=[
        OpenApiExample("days out of range", {"days": ["Ensure this value is less than or equal to 365."]}),
        OpenApiExample("unknown zone", {"tz": ['"Mars/Olympus" is not an IANA time zone name (e.g. Europe/Moscow).']}),
    ],
)


class ListLengthAutoSchema(AutoSchema):
    """drf-spectacular leaves a ListSerializer's min_length/max_length out of a request body;
    this states them as minItems/maxItems, so /docs shows the limits the serializer enforces."""

    def _unwrap_list_serializer(self, serializer, direction):
        schema = super()._unwrap_list_serializer(serializer, direction)
        if schema and is_list_serializer(serializer):
            for key, value in (("minItems", serializer.min_length), ("maxItems", serializer.max_length)):
                if value is not None:
                    schema[key] = value
        return schema


# --- Ingestion --------------------------------------------------------------------------------
STORED_EXAMPLE = {
    "id": EVENT_ID, "user_id": USER, "movie_id": MOVIE, "event_type": "start", "position_seconds": 0,
    "event_time": "2026-11-28T20:04:05Z", "session_id": SESSION, "metadata": {"device": "tv"},
}

event_create = extend_schema_view(
    post=extend_schema(
        operation_id="event_create",
        tags=TAGS,
        summary="Record one viewing event",
        description="Stored within about one buffer interval (docs/architecture.md, Writes); a 201 means "
        "the event is stored and visible in the analytics. An `id` already stored is not counted twice.",
        request=EventInputSerializer,
        responses={
            201: StoredEventSerializer,
            400: OpenApiResponse(
                EVENT_ERRORS_SCHEMA,
                description="Invalid event (each offending field with its messages), or malformed JSON.",
                examples=[
                    OpenApiExample(
                        "bad fields",
                        {"user_id": ["Must be a valid UUID."], "position_seconds": ["Must be an integer."]},
                    ),
                    OpenApiExample(
                        "malformed JSON", {"detail": "JSON parse error - Expecting value: line 1 column 1 (char 0)"}
                    ),
                ],
            ),
            413: TOO_LARGE,
            415: UNSUPPORTED,
            **INGEST_ACCESS_ERRORS,
            503: STORE_FAILED,
            507: STORAGE_FULL,
        },
        examples=[
            OpenApiExample(
                "start",
                {**STORED_EXAMPLE, "event_type": "stream.start", "event_time": "2026-11-28T21:04:05+01:00"},
                request_only=True,
            ),
            OpenApiExample("stored", STORED_EXAMPLE, response_only=True, status_codes=[201]),
        ],
    )
)

event_batch = extend_schema_view(
    post=extend_schema(
        operation_id="event_batch_create",
        tags=TAGS,
        summary="Record 1 … 10,000 viewing events at once",
        description="All or nothing, one insert. `accepted` counts the events of the request; "
        "re-sent ids are accepted but stored only once.",
        request=EventBatchSerializer,
        responses={
            201: BatchAcceptedSerializer,
            400: OpenApiResponse(
                BATCH_ERRORS_SCHEMA,
                description="Some item is invalid (nothing is stored), or the body is not an array "
                "of 1 … 10,000 events, or malformed JSON.",
                examples=[
                    OpenApiExample("second item invalid", {"errors": [{}, {"movie_id": ["This field is required."]}]}),
                    OpenApiExample("empty", {"non_field_errors": ["Expected a JSON array of 1 to 10000 events."]}),
                ],
            ),
            413: TOO_LARGE,
            415: UNSUPPORTED,
            **INGEST_ACCESS_ERRORS,
            503: STORE_FAILED,
            507: STORAGE_FULL,
        },
        examples=[
            OpenApiExample(
                "two events",
                [
                    {"user_id": USER, "movie_id": MOVIE, "event_type": "start", "timestamp": 1795813445},
                    {"user_id": USER, "movie_id": MOVIE, "event_type": "stop", "position_seconds": 5400,
                     "timestamp": "2026-11-28T22:34:05Z"},
                ],
                request_only=True,
            ),
            OpenApiExample("accepted", {"accepted": 2}, response_only=True, status_codes=[201]),
        ],
    )
)

health = extend_schema_view(
    get=extend_schema(
        operation_id="health",
        tags=["service"],
        summary="Liveness and ClickHouse reachability",
        responses={
            200: HealthSerializer,
            503: OpenApiResponse(
                HealthSerializer,
                description="ClickHouse cannot be queried.",
                examples=[
                    OpenApiExample("down", {"status": "unhealthy", "clickhouse": "Code: 210. Connection refused"})
                ],
            ),
        },
        examples=[
            OpenApiExample("up", {"status": "healthy", "clickhouse": "ok"}, response_only=True, status_codes=[200])
        ],
    )
)


# --- Analytics --------------------------------------------------------------------------------
# An example value for each query parameter of the analytics endpoints, shown in /docs.
PARAMETER_EXAMPLES = {
    "tz": "Asia/Kathmandu",
    "days": 7,
    "from": "2026-10-01",
    "to": "2026-10-31",
    "limit": 10,
    "interval": "hour",
    "compare": "previous_period",
    "format": "csv",
    "bucket": 60,
    "window": 300,
}
WINDOW_EXAMPLE = {"from": "2026-11-24", "to": "2026-11-30", "tz": "Europe/Moscow", "period_days": 7}


class AnalyticsAutoSchema(ListLengthAutoSchema):
    """Gives each query parameter its example from PARAMETER_EXAMPLES (DRF fields have no
    place for one), and the `format` parameter a description."""

    def _process_override_parameters(self, direction="request"):
        result = super()._process_override_parameters(direction)
        for (name, location), parameter in result.items():
            if parameter and location == OpenApiParameter.QUERY and name in PARAMETER_EXAMPLES:
                parameter["example"] = PARAMETER_EXAMPLES[name]
        return result

    def _get_format_parameters(self):
        parameters = super()._get_format_parameters()
        for parameter in parameters:
            parameter["description"] = "csv: the answer as CSV (as with `Accept: text/csv`); default json."
            parameter["example"] = PARAMETER_EXAMPLES["format"]
        return parameters


def analytics(*, operation_id, summary, description, example, path_parameters=(),
              bad_request=PARAMETER_ERROR, extra_responses=None):
    """The schema of an AnalyticsApi subclass (a class decorator).

    Query parameters come from the view's FilterSerializer (each field's help_text, an example
    from PARAMETER_EXAMPLES), except `path_parameters` (OpenApiParameter in the path, which the
    FilterSerializer also validates); the 200 body is its OutputSerializer with `example`, or
    as text/csv that example rendered as CSV (the view's csv_rows).
    """

    def decorate(view):
        csv_example = csv_table(example, rows_field=view.csv_rows, columns=[])
        view.schema = AnalyticsAutoSchema()
        excluded = [OpenApiParameter(p.name, location=OpenApiParameter.QUERY, exclude=True) for p in path_parameters]
        errors = {400: bad_request, **(extra_responses or {}), **READ_ACCESS_ERRORS, 503: UNAVAILABLE}
        return extend_schema_view(
            get=extend_schema(
                operation_id=operation_id,
                tags=TAGS,
                summary=summary,
                description=description,
                parameters=[view.FilterSerializer, *excluded, *path_parameters],
                responses={
                    (200, "application/json"): view.OutputSerializer,
                    (200, "text/csv"): OpenApiResponse(
                        {"type": "string"},
                        examples=[OpenApiExample("csv", csv_example, media_type="text/csv")],
                    ),
                    # Errors are JSON whatever format was asked.
                    **{(code, "application/json"): response for code, response in errors.items()},
                },
                examples=[
                    OpenApiExample(
                        operation_id.replace("_", " "), example, response_only=True, media_type="application/json"
                    )
                ],
            )
        )(view)

    return decorate


WINDOW_DESCRIPTION = (
    " The window is `days` local dates ending today, or `from`…`to`, in the time zone `tz` (default UTC);"
    " the answer names it in `from`, `to`, `tz` and `period_days`. `Accept: text/csv` or `?format=csv`"
    " answers CSV."
)

content_popular = analytics(
    operation_id="content_popular",
    summary="Most started movies of the window",
    description="One item per movie with at least one start in the window, ordered by "
    "total_views desc, unique_viewers desc, movie_id asc." + WINDOW_DESCRIPTION,
    example={
        "items": [{"movie_id": MOVIE, "total_views": 1500, "unique_viewers": 800, "completion_rate": 75.5}],
        **WINDOW_EXAMPLE,
        "total_items": 1,
    },
)

user_stats = analytics(
    operation_id="user_stats",
    summary="One user's viewing in the window",
    description="A user with no events gets zeros and a null most_watched_movie_id; `days` defaults "
    "to 30 here." + WINDOW_DESCRIPTION,
    path_parameters=[
        OpenApiParameter("user_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The user's UUID.")
    ],
    bad_request=OpenApiResponse(
        FIELD_ERRORS_SCHEMA,
        description="user_id is not a UUID, or a query parameter is malformed or out of range.",
        examples=[OpenApiExample("bad user id", {"user_id": ["Must be a valid UUID."]})],
    ),
    extra_responses={404: error("No such path (for example an empty user id).", "Not Found")},
    example={
        "user_id": USER,
        "movies_started": 25,
        "movies_finished": 18,
        "unique_movies_watched": 20,
        "total_watch_time_seconds": 108000,
        "completion_rate": 72.0,
        **WINDOW_EXAMPLE,
        "period_days": 30,
        "from": "2026-11-01",
        "most_watched_movie_id": MOVIE,
    },
)

trends = analytics(
    operation_id="trends",
    summary="Starts, finishes, events, distinct users and movies per local hour, date, week or month",
    description="One entry per bucket of `interval`, covering the window exactly, oldest first, "
    "zero-filled. day: keyed `date`; hour: keyed `start`, ISO 8601 with the zone's offset (a day "
    "whose clock goes back has 25 entries, forward 23; at most 31 dates); week (ISO, Monday first) "
    "and month: keyed `start`, the later of the bucket's first date and `from`. "
    "`compare=previous_period` adds `previous`, the entries of the window of as many dates ending "
    "the date before `from`." + WINDOW_DESCRIPTION,
    example={
        **WINDOW_EXAMPLE,
        "period_days": 2,
        "from": "2026-11-29",
        "interval": "day",
        "trends": [
            {"date": "2026-11-29", "starts": 0, "finishes": 0, "total_events": 0, "unique_users": 0,
             "unique_movies": 0},
            {"date": "2026-11-30", "starts": 10, "finishes": 7, "total_events": 40, "unique_users": 9,
             "unique_movies": 5},
        ],
    },
)

peak_hours = analytics(
    operation_id="peak_hours",
    summary="Events and distinct users per local hour of day",
    description="All 24 local hours ascending, zero-filled; peak_hour has the most events (ties: "
    "the earliest), null when there are none. On a day whose clock goes back both passes through "
    "the repeated hour count in that hour; a skipped hour has no events." + WINDOW_DESCRIPTION,
    example={
        **WINDOW_EXAMPLE,
        "peak_hour": 21,
        "peak_hours": [{"hour": h, "events_count": 40 if h == 21 else 12, "unique_users": 7} for h in range(24)],
    },
)
