"""The erasure record: one row per erasure of a viewer, kept in Django's database (an audit
trail next to the API keys that ask for erasures), never edited."""

from django.db import models


class ErasureRecord(models.Model):
    """An erasure: when, by which API key or command, and how many stored events it removed."""

    user_id = models.UUIDField("user id", db_index=True, help_text="The viewer whose events were erased.")
    erased_at = models.DateTimeField("erased at", auto_now_add=True, db_index=True)
    requested_by = models.CharField(
        "requested by", max_length=120,
        help_text="The API key (prefix and name), the command, or the write path that found a racing insert.",
    )
    api_key_prefix = models.CharField("API key prefix", max_length=8, blank=True, db_index=True)
    events_deleted = models.PositiveBigIntegerField("events deleted")
    seconds = models.FloatField("seconds", help_text="How long the erasure took, aggregates included.")

    class Meta:
        ordering = ("-erased_at", "-id")
        verbose_name = "erasure"
        verbose_name_plural = "erasures"

    def __str__(self) -> str:
        return f"{self.user_id} erased at {self.erased_at:%Y-%m-%d %H:%M:%S} ({self.events_deleted} events)"
