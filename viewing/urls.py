"""URL routes of the viewing app: the analytics API, health, and the API's schema and docs."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import privacy_api, views, views_engagement

urlpatterns = [
    path("health", views.HealthApi.as_view(), name="health"),
    path("api/v1/analytics/events", views.EventCreateApi.as_view(), name="event-create"),
    path("api/v1/analytics/events/batch", views.EventBatchApi.as_view(), name="event-batch"),
    path("api/v1/analytics/content/popular", views.PopularContentApi.as_view(), name="content-popular"),
    path("api/v1/analytics/user/<str:user_id>/stats", views.UserStatsApi.as_view(), name="user-stats"),
    path("api/v1/analytics/trends", views.TrendsApi.as_view(), name="trends"),
    path("api/v1/analytics/peak-hours", views.PeakHoursApi.as_view(), name="peak-hours"),
    path("api/v1/analytics/summary", views_engagement.SummaryApi.as_view(), name="summary"),
    path(
        "api/v1/analytics/content/<str:movie_id>/retention",
        views_engagement.RetentionApi.as_view(),
        name="content-retention",
    ),
    path("api/v1/analytics/concurrency", views_engagement.ConcurrencyApi.as_view(), name="concurrency"),
    path("api/v1/analytics/realtime", views_engagement.RealtimeApi.as_view(), name="realtime"),
    path("api/v1/analytics/users/<str:user_id>", privacy_api.UserEraseApi.as_view(), name="user-erase"),
    path("api/v1/analytics/users/<str:user_id>/events", privacy_api.UserEventsExportApi.as_view(),
         name="user-events-export"),
    path("api/v1/analytics/events/export", privacy_api.EventsExportApi.as_view(), name="events-export"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("redoc", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]
