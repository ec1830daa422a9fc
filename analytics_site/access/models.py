"""API keys with scopes: `ingest` (POST events), `read` (analytics, /metrics), `erase` (delete
a viewer's events) and `export` (download raw events)."""

from django.db import models
from rest_framework_api_key.models import AbstractAPIKey

SCOPES = ("ingest", "read", "erase", "export")


class ApiKey(AbstractAPIKey):
    """A key is stored as its 8-character prefix and a SHA-512 hash of the whole key
    (djangorestframework-api-key); the key itself is shown once, when it is created."""

    can_ingest = models.BooleanField("ingest scope", default=False, help_text="May POST viewing events.")
    can_read = models.BooleanField("read scope", default=False, help_text="May read the analytics and /metrics.")
    # Erasure and export touch personal data: only a key that names them may, never a staff
    # session or another scope implicitly.
    can_erase = models.BooleanField(
        "erase scope", default=False, help_text="May erase every stored event of a viewer (irreversible)."
    )
    can_export = models.BooleanField(
        "export scope", default=False, help_text="May download raw events (a viewer's, or a window's)."
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    @property
    def scopes(self) -> list[str]:
        return [scope for scope in SCOPES if getattr(self, f"can_{scope}")]

    def has_scope(self, scope: str) -> bool:
        return scope in SCOPES and getattr(self, f"can_{scope}")
