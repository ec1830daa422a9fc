"""Django app config for the viewing app."""

from django.apps import AppConfig


class ViewingConfig(AppConfig):
    name = "viewing"
    verbose_name = "Viewing analytics"
