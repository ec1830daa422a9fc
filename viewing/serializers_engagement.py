"""Query parameters and response bodies of the engagement endpoints (summary, retention,
concurrency, realtime)."""

from rest_framework import serializers

from .engagement import MAX_CURVE_POINTS
from .filters import WindowFilterSerializer
from .serializers import UserIdField
from .windows import MAX_DATES, MAX_HOURLY_DATES


class SummaryFilterSerializer(WindowFilterSerializer):
    compare = serializers.ChoiceField(
        choices=["previous_period"], required=False,
        help_text="previous_period: add the previous window (as many dates, ending the date before `from`; while "
        "the window is in progress, counted up to the same elapsed time) and the change.",
    )


class RetentionFilterSerializer(WindowFilterSerializer):
    movie_id = UserIdField(help_text="The movie's UUID (in the path).")
    bucket = serializers.IntegerField(
        min_value=10, max_value=3600, default=60,
        help_text=f"Seconds between the curve's points (10 … 3600); at most {MAX_CURVE_POINTS} points.",
    )


class ConcurrencyFilterSerializer(WindowFilterSerializer):
    interval = serializers.ChoiceField(
        choices=["day", "hour"], default="day", help_text="day: one entry per local date; hour: per local clock hour."
    )

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if attrs["interval"] == "hour" and attrs["window"].days > MAX_HOURLY_DATES:
            raise serializers.ValidationError(
                {"interval": [f"hour needs a window of at most {MAX_HOURLY_DATES} dates."]}
            )
        return attrs


class RealtimeFilterSerializer(serializers.Serializer):
    window = serializers.IntegerField(
        min_value=60, max_value=3600, default=300, help_text="Seconds back from now that form the views (60 … 3600)."
    )


# --- Responses ------------------------------------------------------------------------------
# Built with type(): `from` is a Python keyword, so it cannot be a class attribute.
def _window_header():
    return {
        "from": serializers.DateField(help_text="first local date of the window"),
        "to": serializers.DateField(help_text="last local date of the window, included"),
        "tz": serializers.CharField(help_text="the time zone of the dates"),
        "period_days": serializers.IntegerField(min_value=1, max_value=MAX_DATES),
    }


def _summary_fields():
    return {
        **_window_header(),
        "starts": serializers.IntegerField(min_value=0),
        "finishes": serializers.IntegerField(min_value=0),
        "total_events": serializers.IntegerField(min_value=0),
        "unique_users": serializers.IntegerField(min_value=0, help_text="distinct over the whole window"),
        "unique_movies": serializers.IntegerField(min_value=0, help_text="distinct over the whole window"),
        "views": serializers.IntegerField(min_value=0, help_text="(session, movie) pairs with events in the window"),
        "watch_time_seconds": serializers.IntegerField(min_value=0, help_text="sum over the views of high − low"),
        "avg_view_duration_seconds": serializers.FloatField(min_value=0, help_text="watch time / views, 2 decimals"),
        "completion_rate": serializers.FloatField(min_value=0, max_value=100, help_text="100 × finishes / starts"),
        "peak_concurrent_views": serializers.IntegerField(min_value=0, help_text="most views live at one instant"),
    }


SummaryPeriodSerializer = type("SummaryPeriodSerializer", (serializers.Serializer,), _summary_fields())
SummaryChangeSerializer = type(
    "SummaryChangeSerializer",
    (serializers.Serializer,),
    {
        name: serializers.FloatField(allow_null=True, help_text="% change; null when the previous value is 0")
        for name in _summary_fields()
        if name not in _window_header()
    },
)
SummarySerializer = type(
    "SummarySerializer",
    (serializers.Serializer,),
    {
        **_summary_fields(),
        "previous": SummaryPeriodSerializer(required=False, help_text="with compare=previous_period"),
        "change": SummaryChangeSerializer(required=False, help_text="with compare=previous_period"),
    },
)


class RetentionPointSerializer(serializers.Serializer):
    position = serializers.IntegerField(min_value=0, help_text="seconds into the film")
    viewers = serializers.IntegerField(min_value=0, help_text="views with low ≤ position ≤ high")
    percent = serializers.FloatField(min_value=0, max_value=100, help_text="100 × viewers / views, 2 decimals")


RetentionSerializer = type(
    "RetentionSerializer",
    (serializers.Serializer,),
    {
        "movie_id": serializers.UUIDField(),
        **_window_header(),
        "views": serializers.IntegerField(min_value=0),
        "bucket_seconds": serializers.IntegerField(min_value=10, max_value=3600),
        "avg_view_duration_seconds": serializers.FloatField(min_value=0),
        "curve": RetentionPointSerializer(many=True, help_text="one point per multiple of bucket up to the highest position"),
    },
)


class ConcurrencyEntrySerializer(serializers.Serializer):
    date = serializers.DateField(required=False, help_text="interval=day: the local date")
    start = serializers.CharField(
        required=False, help_text="interval=hour: the hour's first instant, ISO 8601 with the zone's offset"
    )
    peak_concurrent_views = serializers.IntegerField(min_value=0)
    peak_at = serializers.CharField(allow_null=True, help_text="earliest instant of the peak, ISO 8601 UTC; null when 0")


ConcurrencySerializer = type(
    "ConcurrencySerializer",
    (serializers.Serializer,),
    {
        **_window_header(),
        "interval": serializers.ChoiceField(choices=["day", "hour"]),
        "concurrency": ConcurrencyEntrySerializer(many=True, help_text="every bucket of the window, oldest first"),
    },
)


class TopMovieSerializer(serializers.Serializer):
    movie_id = serializers.UUIDField()
    live_views = serializers.IntegerField(min_value=1)


class RealtimeSerializer(serializers.Serializer):
    as_of = serializers.CharField(help_text="now, ISO 8601 UTC")
    window_seconds = serializers.IntegerField(min_value=60, max_value=3600)
    live_views = serializers.IntegerField(min_value=0, help_text="views of the window without a finish")
    viewers = serializers.IntegerField(min_value=0, help_text="distinct users of the live views")
    top_movies = TopMovieSerializer(many=True, help_text="up to 10, by live_views desc then movie_id")

