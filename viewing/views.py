"""HTTP endpoints: event ingestion, the four analytics reads, health.

Thin: validation in serializers and viewing.events, reads in selectors, writes in services and
ingest_buffer.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics_site.exceptions import PayloadTooLarge, StorageUnavailable

from . import clock, selectors
from .ingest_buffer import event_ingest
from .serializers import (
    BATCH_ERRORS_SCHEMA,
    EVENT_ERRORS_SCHEMA,
    FIELD_ERRORS_SCHEMA,
    BatchAcceptedSerializer,
    ErrorSerializer,
    EventInputSerializer,
    HealthSerializer,
    PeakHoursSerializer,
    PopularContentSerializer,
    StoredEventSerializer,
    TrendsSerializer,
    UserIdField,
    UserStatsSerializer,
    events_validate_batch,
)
from .services import events_store

TAGS = ["analytics"]
USER = "5f1c7c9e-3b2a-4d8e-9a51-0c6f2b7d8e11"
MOVIE = "9b2d4e6f-1a3c-4b5d-8e7f-2a4c6e8b0d13"
OTHER_MOVIE = "1e3a5c7e-9b0d-4f2a-8c4e-6a8c0e2a4c68"
SESSION = "c3d5e7f9-2b4d-4f6a-8c0e-1a3b5c7d9e24"
EVENT_ID = "0e4c7a2b-6d8f-4a1c-9e3b-5f7d9b1c3e57"


def _error(description, detail):
    return OpenApiResponse(
        ErrorSerializer, description=description, examples=[OpenApiExample(description, {"detail": detail})]
    )


UNAVAILABLE = _error("ClickHouse cannot be queried.", StorageUnavailable.default_detail)
TOO_LARGE = _error("The body is larger than 10 MiB.", PayloadTooLarge.default_detail)
UNSUPPORTED = _error("The body is not application/json.", 'Unsupported media type "text/plain" in request.')
PARAMETER_ERROR = OpenApiResponse(
    FIELD_ERRORS_SCHEMA,
    description="A query parameter is malformed or out of range; the body names it.",
    examples=[OpenApiExample("days out of range", {"days": ["Ensure this value is less than or equal to 365."]})],
)
# Every analytics endpoint: a key (or staff session) is checked before anything else.
def access_errors(scope):
    return {
        401: _error("No API key, or one that is unknown, revoked or expired.", "Invalid API key."),
        403: _error(f"The API key lacks the '{scope}' scope.", f"This API key does not have the '{scope}' scope."),
        429: _error(
            "Too many requests for this key and scope; the Retry-After header says when to retry.",
            "Request was throttled. Expected available in 12 seconds.",
        ),
    }


INGEST_ACCESS_ERRORS = access_errors("ingest")
READ_ACCESS_ERRORS = access_errors("read")
DAYS_HELP = "Number of UTC calendar days ending today, today included (1 … 365)."


class EventCreateApi(APIView):
    access_scope = "ingest"

    @extend_schema(
        operation_id="event_create",
        tags=TAGS,
        summary="Record one viewing event",
        description="Stored within about one buffer interval (docs/architecture.md, Writes); a 201 means the event "
        "is stored and visible in the analytics. An `id` already stored is not counted twice.",
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
            503: UNAVAILABLE,
        },
        examples=[
            OpenApiExample(
                "start",
                {
                    "id": EVENT_ID,
                    "user_id": USER,
                    "movie_id": MOVIE,
                    "event_type": "stream.start",
                    "position_seconds": 0,
                    "event_time": "2026-11-28T21:04:05+01:00",
                    "session_id": SESSION,
                    "metadata": {"device": "tv"},
                },
                request_only=True,
            ),
            OpenApiExample(
                "stored",
                {
                    "id": EVENT_ID,
                    "user_id": USER,
                    "movie_id": MOVIE,
                    "event_type": "start",
                    "position_seconds": 0,
                    "event_time": "2026-11-28T20:04:05Z",
                    "session_id": SESSION,
                    "metadata": {"device": "tv"},
                },
                response_only=True,
                status_codes=[201],
            ),
        ],
    )
    def post(self, request):
        serializer = EventInputSerializer(data=request.data, context={"now": clock.now()})
        serializer.is_valid(raise_exception=True)
        event = event_ingest(event=serializer.validated_data)
        return Response(StoredEventSerializer(event).data, status=201)


class EventBatchApi(APIView):
    access_scope = "ingest"

    @extend_schema(
        operation_id="event_batch_create",
        tags=TAGS,
        summary="Record 1 … 10,000 viewing events at once",
        description="All or nothing, one insert. `accepted` counts the events of the request; "
        "re-sent ids are accepted but stored only once.",
        request=EventInputSerializer(many=True),
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
            503: UNAVAILABLE,
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
    def post(self, request):
        rows = events_validate_batch(request.data, now=clock.now())
        events_store(events=rows)
        return Response({"accepted": len(rows)}, status=201)


class PopularContentApi(APIView):
    access_scope = "read"

    class FilterSerializer(serializers.Serializer):
        days = serializers.IntegerField(min_value=1, max_value=365, default=7, help_text=DAYS_HELP)
        limit = serializers.IntegerField(min_value=1, max_value=100, default=10, help_text="Items at most (1 … 100).")

    @extend_schema(
        operation_id="content_popular",
        tags=TAGS,
        summary="Most started movies of the window",
        description="One item per movie with at least one start in the window, ordered by "
        "total_views desc, unique_viewers desc, movie_id asc.",
        parameters=[FilterSerializer],
        responses={200: PopularContentSerializer, 400: PARAMETER_ERROR, **READ_ACCESS_ERRORS, 503: UNAVAILABLE},
        examples=[
            OpenApiExample(
                "popular",
                {
                    "items": [{"movie_id": MOVIE, "total_views": 1500, "unique_viewers": 800, "completion_rate": 75.5}],
                    "period_days": 7,
                    "total_items": 1,
                },
                response_only=True,
            )
        ],
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return Response(PopularContentSerializer(selectors.popular_content(**filters.validated_data)).data)


class UserStatsApi(APIView):
    access_scope = "read"

    class FilterSerializer(serializers.Serializer):
        user_id = UserIdField()
        days = serializers.IntegerField(min_value=1, max_value=365, default=30, help_text=DAYS_HELP)

    @extend_schema(
        operation_id="user_stats",
        tags=TAGS,
        summary="One user's viewing in the window",
        description="A user with no events gets zeros and a null most_watched_movie_id.",
        parameters=[
            OpenApiParameter("user_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The user's UUID."),
            OpenApiParameter(
                "days",
                {"type": "integer", "minimum": 1, "maximum": 365, "default": 30},
                OpenApiParameter.QUERY,
                description=DAYS_HELP,
            ),
        ],
        responses={
            200: UserStatsSerializer,
            400: OpenApiResponse(
                FIELD_ERRORS_SCHEMA,
                description="user_id is not a UUID, or days is malformed or out of range.",
                examples=[OpenApiExample("bad user id", {"user_id": ["Must be a valid UUID."]})],
            ),
            404: _error("No such path (for example an empty user id).", "Not Found"),
            **READ_ACCESS_ERRORS,
            503: UNAVAILABLE,
        },
        examples=[
            OpenApiExample(
                "stats",
                {
                    "user_id": USER,
                    "movies_started": 25,
                    "movies_finished": 18,
                    "unique_movies_watched": 20,
                    "total_watch_time_seconds": 108000,
                    "completion_rate": 72.0,
                    "period_days": 30,
                    "most_watched_movie_id": MOVIE,
                },
                response_only=True,
            )
        ],
    )
    def get(self, request, user_id):
        filters = self.FilterSerializer(data={**request.query_params.dict(), "user_id": user_id})
        filters.is_valid(raise_exception=True)
        return Response(UserStatsSerializer(selectors.user_stats(**filters.validated_data)).data)


class TrendsApi(APIView):
    access_scope = "read"

    class FilterSerializer(serializers.Serializer):
        days = serializers.IntegerField(min_value=1, max_value=365, default=7, help_text=DAYS_HELP)

    @extend_schema(
        operation_id="trends",
        tags=TAGS,
        summary="Day by day: starts, finishes, events, distinct users and movies",
        description="Exactly `days` entries, oldest first; days without events are zeros.",
        parameters=[FilterSerializer],
        responses={200: TrendsSerializer, 400: PARAMETER_ERROR, **READ_ACCESS_ERRORS, 503: UNAVAILABLE},
        examples=[
            OpenApiExample(
                "trends",
                {
                    "period_days": 2,
                    "trends": [
                        {"date": "2026-11-27", "starts": 0, "finishes": 0, "total_events": 0,
                         "unique_users": 0, "unique_movies": 0},
                        {"date": "2026-11-28", "starts": 10, "finishes": 7, "total_events": 40,
                         "unique_users": 9, "unique_movies": 5},
                    ],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return Response(TrendsSerializer(selectors.trends(**filters.validated_data)).data)


class PeakHoursApi(APIView):
    access_scope = "read"

    class FilterSerializer(serializers.Serializer):
        days = serializers.IntegerField(min_value=1, max_value=365, default=7, help_text=DAYS_HELP)

    @extend_schema(
        operation_id="peak_hours",
        tags=TAGS,
        summary="Events and distinct users per UTC hour of day",
        description="All 24 hours ascending, zero-filled; peak_hour has the most events (ties: "
        "the earliest), null when there are none.",
        parameters=[FilterSerializer],
        responses={200: PeakHoursSerializer, 400: PARAMETER_ERROR, **READ_ACCESS_ERRORS, 503: UNAVAILABLE},
        examples=[
            OpenApiExample(
                "peak hours",
                {
                    "period_days": 7,
                    "peak_hour": 21,
                    "peak_hours": [{"hour": h, "events_count": 40 if h == 21 else 12, "unique_users": 7}
                                   for h in range(24)],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return Response(PeakHoursSerializer(selectors.peak_hours(**filters.validated_data)).data)


class HealthApi(APIView):
    # Always open, whatever the request carries: probes have no key.
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
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
    def get(self, request):
        ok, detail = selectors.clickhouse_health()
        body = {"status": "healthy" if ok else "unhealthy", "clickhouse": "ok" if ok else detail}
        return Response(body, status=200 if ok else 503)
