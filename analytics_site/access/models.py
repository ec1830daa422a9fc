"""API keys with scopes: `ingest` (POST events) and `read` (analytics, /metrics)."""

from django.db import models
from rest_framework_api_key.models import AbstractAPIKey

SCOPES = ("ingest", "read")


class ApiKey(AbstractAPIKey):
    """A key is stored as its 8-character prefix and a SHA-512 hash of the whole key
    (djangorestframework-api-key); the key itself is shown once, when it is created."""

    can_ingest = models.BooleanField("ingest scope", default=False, help_text="May POST viewing events.")
    can_read = models.BooleanField("read scope", default=False, help_text="May read the analytics and /metrics.")

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    @property
    def scopes(self):
        return [scope for scope in SCOPES if getattr(self, f"can_{scope}")]

    def has_scope(self, scope):
        return scope in SCOPES and getattr(self, f"can_{scope}")
