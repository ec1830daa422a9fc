"""Django app config for API access (its tables live in the `default` database)."""

from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "analytics_site.access"
    label = "access"
    verbose_name = "API access"
    default_auto_field = "django.db.models.BigAutoField"
