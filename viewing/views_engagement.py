"""HTTP endpoints of viewing engagement: summary, a movie's retention curve, concurrency and
realtime (AnalyticsApi: filter serializer → selector in viewing.engagement → output)."""

from . import engagement
from . import openapi_engagement as openapi
from .serializers_engagement import (
    ConcurrencyFilterSerializer,
    ConcurrencySerializer,
    RealtimeFilterSerializer,
    RealtimeSerializer,
    RetentionFilterSerializer,
    RetentionSerializer,
    SummaryFilterSerializer,
    SummarySerializer,
)
from .views import AnalyticsApi


@openapi.summary
class SummaryApi(AnalyticsApi):
    FilterSerializer = SummaryFilterSerializer
    OutputSerializer = SummarySerializer
    selector = engagement.summary
    csv_name = "summary"


@openapi.content_retention
class RetentionApi(AnalyticsApi):
    FilterSerializer = RetentionFilterSerializer
    OutputSerializer = RetentionSerializer
    selector = engagement.retention
    csv_name, csv_rows = "retention", "curve"


@openapi.concurrency
class ConcurrencyApi(AnalyticsApi):
    FilterSerializer = ConcurrencyFilterSerializer
    OutputSerializer = ConcurrencySerializer
    selector = engagement.concurrency
    csv_name, csv_rows = "concurrency", "concurrency"


@openapi.realtime
class RealtimeApi(AnalyticsApi):
    FilterSerializer = RealtimeFilterSerializer
    OutputSerializer = RealtimeSerializer
    selector = engagement.realtime
    csv_name, csv_rows = "realtime", "top_movies"
