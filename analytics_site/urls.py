"""URL routes: the API, its schema and docs, health, admin, and the front page."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from viewing import dashboard

from . import ops

urlpatterns = [
    path("", dashboard.home, name="home"),
    path("admin/", admin.site.urls),
    path("ready", ops.ready, name="ready"),
    path("metrics", ops.MetricsApi.as_view(), name="metrics"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    # The documentation pages answer with a trailing slash too (people type both).
    path("docs/", RedirectView.as_view(pattern_name="swagger-ui", query_string=True)),
    path("redoc/", RedirectView.as_view(pattern_name="redoc", query_string=True)),
    path("", include("viewing.urls")),
]
