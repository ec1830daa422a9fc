"""HTTP endpoints: event ingestion, the analytics reads, health.

Views only: validation in serializers (and viewing.events), reads in selectors, writes in
services and ingest_buffer, the OpenAPI description in viewing.openapi.
"""

from django.conf import settings
from django.http import Http404
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics_site.metrics import BATCHES_CHECKED

from . import clock, openapi, selectors
from .batch_commit import batch_arrival
from .batch_decode import EventBatchParser
from .batch_engine import stage_batch, staging_arrival
from .filters import TrendsFilterSerializer, WindowFilterSerializer
from .ingest_buffer import event_ingest
from .renderers import AnalyticsCsvRenderer
from .serializers import (
    EventBatchSerializer,
    EventInputSerializer,
    PeakHoursSerializer,
    PopularContentSerializer,
    TrendsSerializer,
    UserIdField,
    UserStatsSerializer,
    stored_event_body,
)


class AnalyticsApi(APIView):
    """The base of every analytics read: query parameters → selector → response body.

    A subclass is an endpoint when it sets:

    - `FilterSerializer`: validates the query parameters together with the URL's path
      parameters (`/user/<user_id>/stats` gives it `user_id`); a bad one is a 400 naming it.
      Subclass filters.WindowFilterSerializer for `tz` and `days` or `from`/`to`: its
      validated_data then hold `window` (a windows.Window). The validated_data are the
      selector's keyword arguments, as they are.
    - `selector`: the read in viewing.selectors (a plain function; called with those keyword
      arguments, returns plain data; a windowed answer includes `**window.fields()`).
    - `OutputSerializer`: renders what the selector returns (and documents it in /docs).
    - `csv_name` and `csv_rows`: the CSV answer (`Accept: text/csv` or `?format=csv`) is the
      entries of the list field `csv_rows` (None: the answer as one row), as the attachment
      `<csv_name>_<from>_<to>.csv`; `csv_series` names further lists of the same entries
      that follow them when the answer has them, each row then led by its list's name
      (viewing/renderers.py).

    and is documented by an `openapi.analytics(...)` decorator and routed in viewing/urls.py:

        @openapi.content_popular
        class PopularContentApi(AnalyticsApi):
            class FilterSerializer(WindowFilterSerializer):
                limit = serializers.IntegerField(min_value=1, max_value=100, default=10)

            OutputSerializer = PopularContentSerializer
            selector = selectors.popular_content
            csv_name, csv_rows = "popular", "items"

    Reading needs the `read` scope. Nothing else belongs in a subclass: no SQL, no logic.
    """

    access_scope = "read"
    renderer_classes = [JSONRenderer, AnalyticsCsvRenderer]
    FilterSerializer: type[serializers.Serializer]
    OutputSerializer: type[serializers.Serializer]
    selector = None  # a function; read through the class, so it is not bound to the view
    csv_name: str
    csv_rows: str | None = None
    csv_series: tuple[str, ...] = ()

    def perform_content_negotiation(self, request, force=False):
        # DRF answers an unknown ?format= with a 404, as if the path did not exist; here it is
        # a bad query parameter like any other.
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            formats = ", ".join(renderer.format for renderer in self.get_renderers())
            raise serializers.ValidationError({"format": [f"Unknown format; use one of: {formats}."]}) from None

    def handle_exception(self, exc):
        # Errors are JSON, whatever format the answer was asked in.
        response = super().handle_exception(exc)
        self.request.accepted_renderer, self.request.accepted_media_type = JSONRenderer(), "application/json"
        return response

    def get(self, request, **path_parameters):
        # An empty parameter (`?days=`) means its default; of repeated ones the last counts.
        given = {name: value for name, value in request.query_params.items() if value != ""}
        filters = self.FilterSerializer(data={**given, **path_parameters})
        filters.is_valid(raise_exception=True)
        result = type(self).selector(**filters.validated_data)
        return Response(self.OutputSerializer(result).data)


@openapi.event_create
class EventCreateApi(APIView):
    access_scope = "ingest"

    def post(self, request):
        serializer = EventInputSerializer(data=request.data, context={"now": clock.now()})
        serializer.is_valid(raise_exception=True)
        event = event_ingest(event=serializer.validated_data)
        return Response(stored_event_body(event), status=201)


@openapi.event_batch
class EventBatchApi(APIView):
    access_scope = "ingest"
    schema = openapi.ListLengthAutoSchema()
    parser_classes = [EventBatchParser]  # the fast path for batches in the common shape

    def post(self, request):
        # Concurrent batches share one insert (viewing/batch_commit.py) and one staging query
        # (viewing/stage_group.py): a batch being read and checked counts as arriving, so the
        # group about to be stored or staged can wait for it.
        with batch_arrival() as store:
            with staging_arrival():
                body, now = request.data, clock.now()  # body: a batch_decode.BatchBody
                # The engine reads, checks and inserts a body in the common shape itself
                # (viewing/batch_engine.py); any other body goes through the rules.
                staged = stage_batch(body.raw, now=now, retention_days=settings.RETENTION_DAYS) if body.utf8 else None
            if staged is not None:
                try:
                    store(staged)  # returns once stored
                finally:
                    staged.close()
                BATCHES_CHECKED.labels("engine").inc()
                return Response({"accepted": len(staged)}, status=201)
            batch = EventBatchSerializer(data=body.decode(), context={"now": now})
            batch.is_valid(raise_exception=True)
            store(batch.validated_data)  # returns once stored
        BATCHES_CHECKED.labels("rules").inc()
        return Response({"accepted": len(batch.validated_data)}, status=201)


@openapi.content_popular
class PopularContentApi(AnalyticsApi):
    class FilterSerializer(WindowFilterSerializer):
        limit = serializers.IntegerField(min_value=1, max_value=100, default=10, help_text="Items at most (1 … 100).")

    OutputSerializer = PopularContentSerializer
    selector = selectors.popular_content
    csv_name, csv_rows = "popular", "items"


@openapi.user_stats
class UserStatsApi(AnalyticsApi):
    class FilterSerializer(WindowFilterSerializer):
        default_days = 30
        user_id = UserIdField()

    OutputSerializer = UserStatsSerializer
    selector = selectors.user_stats
    csv_name = "user_stats"


@openapi.trends
class TrendsApi(AnalyticsApi):
    FilterSerializer = TrendsFilterSerializer
    OutputSerializer = TrendsSerializer
    selector = selectors.trends
    csv_name, csv_rows = "trends", "trends"
    csv_series = ("previous",)  # with compare=previous_period


@openapi.peak_hours
class PeakHoursApi(AnalyticsApi):
    FilterSerializer = WindowFilterSerializer
    OutputSerializer = PeakHoursSerializer
    selector = selectors.peak_hours
    csv_name, csv_rows = "peak_hours", "peak_hours"


@openapi.health
class HealthApi(APIView):
    # Always open, whatever the request carries: probes have no key.
    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request):
        ok, detail = selectors.clickhouse_health()
        body = {"status": "healthy" if ok else "unhealthy", "clickhouse": "ok" if ok else detail}
        return Response(body, status=200 if ok else 503)
