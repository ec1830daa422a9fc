"""URL routes: the API, its schema and docs, health, admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("viewing.urls")),
]
