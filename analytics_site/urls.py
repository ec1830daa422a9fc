"""URL routes: the API, its schema and docs, health, admin."""

from django.contrib import admin
from django.urls import include, path

from viewing import dashboard

from . import ops

urlpatterns = [
    path("admin/", admin.site.urls),
    path("ready", ops.ready, name="ready"),
    path("metrics", ops.MetricsApi.as_view(), name="metrics"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("", include("viewing.urls")),
]
