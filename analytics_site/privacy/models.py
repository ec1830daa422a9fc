"""The erasure record: one row per erasure of a viewer, kept in Django's database (an audit
trail next to the API keys that ask for erasures), never edited; and the record of each
suppression lifted (an operator undoing a suppression entry made by mistake)."""

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


class SuppressionLift(models.Model):
    """A viewer taken off the suppression list: when, by which command, and why."""

    user_id = models.UUIDField("user id", db_index=True, help_text="The viewer taken off the suppression list.")
    lifted_at = models.DateTimeField("lifted at", auto_now_add=True, db_index=True)
    requested_by = models.CharField("requested by", max_length=120, help_text="The command that lifted it.")
    reason = models.TextField("reason", help_text="Why, as the operator gave it.")
    was_suppressed = models.BooleanField(
        "was suppressed", help_text="Whether the viewer was on the list (lifting an absent entry changes nothing)."
    )

    class Meta:
        ordering = ("-lifted_at", "-id")
        verbose_name = "suppression lifted"
        verbose_name_plural = "suppressions lifted"

    def __str__(self) -> str:
        return f"{self.user_id} lifted at {self.lifted_at:%Y-%m-%d %H:%M:%S}"
