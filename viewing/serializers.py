"""Request and response serializers of the HTTP API.

Event input is checked by viewing.events.normalize_event, the rules every way in shares; the
input serializers only wrap it (and describe the fields for OpenAPI), so the rules live in
one place.
"""

import json

from django.conf import settings
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from . import clock
from .batch_decode import CommonBatch, common_rows
from .events import EVENT_TYPES, MAX_POSITION, EventInvalid, normalize_event, parse_uuid

MAX_BATCH = 10_000
EVENT_TIME_SCHEMA = {
    "oneOf": [
        {"type": "string", "format": "date-time", "description": "ISO-8601 with Z or an offset"},
        {"type": "integer", "minimum": 0, "description": "epoch seconds (milliseconds when > 10^11)"},
    ]
}


@extend_schema_field(EVENT_TIME_SCHEMA)
class EventTimeField(serializers.Field):
    """Documentation only: normalize_event parses the value."""


class EventInputSerializer(serializers.Serializer):
    """One viewing event as a client sends it; normalize_event decides what is valid."""

    id = serializers.UUIDField(
        required=False, help_text="Optional event id: re-sending an id already stored is not counted twice."
    )
    user_id = serializers.UUIDField()
    movie_id = serializers.UUIDField()
    event_type = serializers.ChoiceField(choices=list(EVENT_TYPES), help_text="Stored as start, progress or finish.")
    position_seconds = serializers.IntegerField(min_value=0, max_value=MAX_POSITION, required=False, default=0)
    event_time = EventTimeField(
        required=False,
        help_text="When it happened; default the time of receipt. At most 5 minutes ahead, "
        "within the retention period.",
    )
    timestamp = EventTimeField(required=False, help_text="Alias of event_time.")
    session_id = serializers.UUIDField(required=False, allow_null=True)
    metadata = serializers.DictField(required=False, help_text="A JSON object, at most 8 KiB serialized.")

    def run_validation(self, data=serializers.empty):
        # DRF's run_validation would also gather read-only defaults for validators this
        # serializer has none of, deep-copying every declared field (~0.15 ms, a tenth of a
        # single event's request); an object goes straight to normalize_event.
        if isinstance(data, dict):
            return self.to_internal_value(data)
        return super().run_validation(data)

    def to_internal_value(self, data):
        try:
            return normalize_event(
                data,
                now=self.context.get("now") or clock.now(),
                retention_days=settings.RETENTION_DAYS,
                default_time=self.context.get("now"),
            )
        except EventInvalid as e:
            raise serializers.ValidationError(e.errors) from None


class EventBatchSerializer(serializers.ListSerializer):
    """A batch: a JSON array of 1 … 10,000 events (EventInputSerializer), all or nothing.

    What validates the batch endpoint and what /docs shows. Valid: the stored rows. Invalid:
    `{"errors": [...]}` with one entry per item ({} for the valid ones), or `non_field_errors`
    when the body is not such an array. Every item goes straight through normalize_event (its
    fast path for well-formed events) with one `now` for the whole batch, instead of DRF's
    per-item run_validation, which costs more than the check itself at 10,000 items. A body the
    batch endpoint's parser decoded in the common shape (viewing.batch_decode.CommonBatch) gives
    the fast path's rows, the same rows; when one of its items needs the rules, the body is
    parsed as JSON and goes through them as any other.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("child", EventInputSerializer())
        kwargs.setdefault("min_length", 1)
        kwargs.setdefault("max_length", MAX_BATCH)
        kwargs.setdefault("allow_empty", False)
        super().__init__(*args, **kwargs)

    def run_validation(self, data=serializers.empty):
        if isinstance(data, CommonBatch):
            # Decoded by the fast path (viewing/batch_decode.py): its rows when every item passes
            # its checks, else the body as JSON through the rules, which word every error.
            if self.min_length <= len(data) <= self.max_length:
                rows = common_rows(data, now=self.context.get("now") or clock.now(),
                                   retention_days=settings.RETENTION_DAYS)
                if rows is not None:
                    return rows
            data = data.generic()
        if not isinstance(data, list) or not self.min_length <= len(data) <= self.max_length:
            raise serializers.ValidationError(
                {"non_field_errors": [f"Expected a JSON array of {self.min_length} to {self.max_length} events."]}
            )
        return self.to_internal_value(data)

    def to_internal_value(self, data):
        now = self.context.get("now") or clock.now()
        retention_days = settings.RETENTION_DAYS
        rows, errors = [], []
        for item in data:
            try:
                rows.append(normalize_event(item, now=now, retention_days=retention_days, default_time=now))
                errors.append({})
            except EventInvalid as e:
                errors.append(e.errors)
        if len(rows) < len(data):
            raise serializers.ValidationError({"errors": errors})
        return rows


class StoredEventSerializer(serializers.Serializer):
    """An event as stored: canonical type, UTC time, metadata as an object."""

    id = serializers.UUIDField()
    user_id = serializers.UUIDField()
    movie_id = serializers.UUIDField()
    event_type = serializers.ChoiceField(choices=["start", "progress", "finish"])
    position_seconds = serializers.IntegerField(min_value=0, max_value=MAX_POSITION)
    event_time = serializers.SerializerMethodField()
    session_id = serializers.UUIDField(allow_null=True)
    metadata = serializers.SerializerMethodField()

    @extend_schema_field({"type": "string", "format": "date-time", "example": "2026-11-28T21:04:05Z"})
    def get_event_time(self, event):
        return event["event_time"].strftime("%Y-%m-%dT%H:%M:%SZ")

    @extend_schema_field({"type": "object", "additionalProperties": True})
    def get_metadata(self, event):
        return json.loads(event["metadata"])


# One instance renders every stored event: a new serializer per response deep-copies its
# declared fields (~0.1 ms); to_representation keeps no state between calls.
_STORED_EVENT = StoredEventSerializer()


def stored_event_body(event: dict) -> dict:
    """The 201 body of a stored event (StoredEventSerializer)."""
    return _STORED_EVENT.to_representation(event)


class BatchAcceptedSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(
        min_value=1, max_value=MAX_BATCH, help_text="Events in the request (all valid), re-sent ones included."
    )


class ErrorSerializer(serializers.Serializer):
    """A whole-request error (documentation of 401/403/404/413/415/429/503 bodies)."""

    detail = serializers.CharField()


# --- Analytics responses ------------------------------------------------------------------
def period_days_field():
    # A fresh field per serializer: DRF orders declared fields by their creation.
    return serializers.IntegerField(min_value=1, max_value=366, help_text="dates in the window")


class WindowedSerializer(serializers.Serializer):
    """An analytics answer: its own fields with the window's `from`, `to` and `tz` (local
    dates and zone) placed right before `period_days`, the number of dates in the window."""

    period_days = period_days_field()

    def get_fields(self):
        fields, out = super().get_fields(), {}
        for name, field in fields.items():
            if name == "period_days":
                # `from` is a Python keyword, so the window's fields are added here.
                out["from"] = serializers.DateField(help_text="first local date of the window")
                out["to"] = serializers.DateField(help_text="last local date of the window (included)")
                out["tz"] = serializers.CharField(help_text="IANA time zone of the dates and hours")
            out[name] = field
        return out


class PopularItemSerializer(serializers.Serializer):
    movie_id = serializers.UUIDField()
    total_views = serializers.IntegerField(min_value=0, help_text="start events in the window")
    unique_viewers = serializers.IntegerField(min_value=0, help_text="distinct users with any event of the movie")
    completion_rate = serializers.FloatField(
        min_value=0, max_value=100, help_text="100 × finishes / starts, 2 decimals, capped at 100"
    )


class PopularContentSerializer(WindowedSerializer):
    items = PopularItemSerializer(many=True)
    period_days = period_days_field()
    total_items = serializers.IntegerField(min_value=0, help_text="items returned")


class UserStatsSerializer(WindowedSerializer):
    user_id = serializers.UUIDField()
    movies_started = serializers.IntegerField(min_value=0)
    movies_finished = serializers.IntegerField(min_value=0)
    unique_movies_watched = serializers.IntegerField(min_value=0)
    total_watch_time_seconds = serializers.IntegerField(
        min_value=0, help_text="sum of position_seconds of the user's finish events"
    )
    completion_rate = serializers.FloatField(min_value=0, max_value=100)
    period_days = period_days_field()
    most_watched_movie_id = serializers.UUIDField(
        allow_null=True, help_text="most starts; ties to the smallest id as text; null without starts"
    )


@extend_schema_serializer(component_name="TrendEntry")
class TrendEntrySerializer(serializers.Serializer):
    """One bucket: `date` (interval day) or `start` (hour: ISO 8601 with the zone's offset;
    week and month: the later of the bucket's first local date and `from`)."""

    date = serializers.DateField(required=False, help_text="interval=day: the local date")
    start = serializers.CharField(
        required=False, help_text="interval=hour|week|month: the bucket's start (see above)"
    )
    starts = serializers.IntegerField(min_value=0)
    finishes = serializers.IntegerField(min_value=0)
    total_events = serializers.IntegerField(min_value=0)
    unique_users = serializers.IntegerField(min_value=0)
    unique_movies = serializers.IntegerField(min_value=0)


class TrendsSerializer(WindowedSerializer):
    interval = serializers.ChoiceField(choices=["day", "hour", "week", "month"])
    trends = TrendEntrySerializer(many=True, help_text="the window's buckets, oldest first, zero-filled")
    previous = TrendEntrySerializer(
        many=True, required=False,
        help_text="compare=previous_period only: the buckets of the previous window (as many dates, "
        "ending the date before `from`)",
    )


class PeakHourSerializer(serializers.Serializer):
    hour = serializers.IntegerField(min_value=0, max_value=23, help_text="local hour of day")
    events_count = serializers.IntegerField(min_value=0)
    unique_users = serializers.IntegerField(min_value=0)


class PeakHoursSerializer(WindowedSerializer):
    peak_hour = serializers.IntegerField(
        min_value=0, max_value=23, allow_null=True, help_text="most events; ties: the earliest; null without events"
    )
    peak_hours = PeakHourSerializer(many=True, help_text="all 24 local hours, ascending")


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["healthy", "unhealthy"])
    clickhouse = serializers.CharField(help_text='"ok", or the first line of the error')


@extend_schema_field({"type": "string", "format": "uuid"})
class UserIdField(serializers.Field):
    """A user id in any form normalize_event accepts (see viewing.events.parse_uuid)."""

    default_error_messages = {"invalid": "Must be a valid UUID."}

    def to_internal_value(self, data):
        try:
            return parse_uuid(data)
        except ValueError:
            self.fail("invalid")

    def to_representation(self, value):
        return str(value)
