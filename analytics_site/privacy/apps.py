"""Django app config for the privacy records (their table lives in the `default` database)."""

from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "analytics_site.privacy"
    label = "privacy"
    verbose_name = "Privacy"
    default_auto_field = "django.db.models.BigAutoField"
