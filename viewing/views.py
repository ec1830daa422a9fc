"""HTTP endpoints: event ingestion, the analytics reads, health.

Views only: validation in serializers (and viewing.events), reads in selectors, writes in
services and ingest_buffer, the OpenAPI description in viewing.openapi.
"""

from django.http import Http404
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from . import clock, openapi, selectors
from .ingest_buffer import event_ingest
from .serializers import (
    EventBatchSerializer,
    EventInputSerializer,
    PeakHoursSerializer,
    PopularContentSerializer,
    StoredEventSerializer,
    TrendsSerializer,
    UserIdField,
    UserStatsSerializer,
)
from .services import events_store

DAYS_HELP = "Number of UTC calendar days ending today, today included (1 … 365)."


class AnalyticsApi(APIView):
    """The base of every analytics read: query parameters → selector → response body.

    A subclass is an endpoint when it sets three things:

    - `FilterSerializer`: validates the query parameters together with the URL's path
      parameters (`/user/<user_id>/stats` gives it `user_id`); a bad one is a 400 naming it.
      Its validated_data are the selector's keyword arguments, as they are.
    - `selector`: the read in viewing.selectors (a plain function; called with those keyword
      arguments, returns plain data).
    - `OutputSerializer`: renders what the selector returns (and documents it in /docs).

    and is documented by an `openapi.analytics(...)` decorator and routed in viewing/urls.py:

        @openapi.content_popular
        class PopularContentApi(AnalyticsApi):
            class FilterSerializer(serializers.Serializer):
                days = serializers.IntegerField(min_value=1, max_value=365, default=7)
                limit = serializers.IntegerField(min_value=1, max_value=100, default=10)

            OutputSerializer = PopularContentSerializer
            selector = selectors.popular_content

    Reading needs the `read` scope. Nothing else belongs in a subclass: no SQL, no logic.
    """

    access_scope = "read"
    FilterSerializer: type[serializers.Serializer]
    OutputSerializer: type[serializers.Serializer]
    selector = None  # a function; read through the class, so it is not bound to the view

    def perform_content_negotiation(self, request, force=False):
        # DRF answers an unknown ?format= with a 404, as if the path did not exist; here it is
        # a bad query parameter like any other.
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            formats = ", ".join(renderer.format for renderer in self.get_renderers())
            raise serializers.ValidationError({"format": [f"Unknown format; use one of: {formats}."]}) from None

    def get(self, request, **path_parameters):
        filters = self.FilterSerializer(data={**request.query_params.dict(), **path_parameters})
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
        return Response(StoredEventSerializer(event).data, status=201)


@openapi.event_batch
class EventBatchApi(APIView):
    access_scope = "ingest"
    schema = openapi.ListLengthAutoSchema()

    def post(self, request):
        batch = EventBatchSerializer(data=request.data, context={"now": clock.now()})
        batch.is_valid(raise_exception=True)
        events_store(events=batch.validated_data)
        return Response({"accepted": len(batch.validated_data)}, status=201)


@openapi.content_popular
class PopularContentApi(AnalyticsApi):
    class FilterSerializer(serializers.Serializer):
        days = serializers.IntegerField(min_value=1, max_value=365, default=7, help_text=DAYS_HELP)
        limit = serializers.IntegerField(min_value=1, max_value=100, default=10, help_text="Items at most (1 … 100).")

    OutputSerializer = PopularContentSerializer
    selector = selectors.popular_content


@openapi.user_stats
class UserStatsApi(AnalyticsApi):
    class FilterSerializer(serializers.Serializer):
        user_id = UserIdField()
        days = serializers.IntegerField(min_value=1, max_value=365, default=30, help_text=DAYS_HELP)

    OutputSerializer = UserStatsSerializer
    selector = selectors.user_stats


@openapi.trends
class TrendsApi(AnalyticsApi):
    class FilterSerializer(serializers.Serializer):
        days = serializers.IntegerField(min_value=1, max_value=365, default=7, help_text=DAYS_HELP)

    OutputSerializer = TrendsSerializer
    selector = selectors.trends


@openapi.peak_hours
class PeakHoursApi(AnalyticsApi):
    class FilterSerializer(serializers.Serializer):
        days = serializers.IntegerField(min_value=1, max_value=365, default=7, help_text=DAYS_HELP)

    OutputSerializer = PeakHoursSerializer
    selector = selectors.peak_hours


@openapi.health
class HealthApi(APIView):
    # Always open, whatever the request carries: probes have no key.
    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request):
        ok, detail = selectors.clickhouse_health()
        body = {"status": "healthy" if ok else "unhealthy", "clickhouse": "ok" if ok else detail}
        return Response(body, status=200 if ok else 503)
