"""Query parameters of the analytics endpoints: the window (`tz`, `days` or `from`/`to`), the
trends `interval` and `compare`. Each bad parameter is a 400 naming it.

An endpoint's FilterSerializer subclasses WindowFilterSerializer (setting `default_days` if
not 7); its validated_data then hold `window` (a viewing.windows.Window) instead of
tz/days/from/to, plus the endpoint's own parameters.
"""

from datetime import date

from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from . import clock
from .windows import COMPARISONS, INTERVALS, MAX_DATES, MAX_HOURLY_DATES, UnknownZone, Window, zone

TZ_HELP = (
    "IANA time zone of the window's dates and of hours in the answer (Europe/Moscow, "
    "Asia/Kathmandu, America/New_York). Default UTC."
)
DATE_HELP = "Local date YYYY-MM-DD; `from` and `to` (both included, at most 366 dates) replace `days`."


class WindowFilterSerializer(serializers.Serializer):
    """`tz` and either `days` (the local dates ending today) or `from` and `to`."""

    default_days = 7

    tz = serializers.CharField(default="UTC", max_length=64, help_text=TZ_HELP)
    days = serializers.IntegerField(
        min_value=1, max_value=365, required=False,
        help_text="Number of local calendar dates ending today, today included (1 … 365).",
    )

    def get_fields(self):
        # `from` is a Python keyword, so the two dates are added here rather than declared.
        fields = super().get_fields()
        fields["from"] = serializers.DateField(required=False, input_formats=["iso-8601"], help_text=DATE_HELP)
        fields["to"] = serializers.DateField(required=False, input_formats=["iso-8601"], help_text=DATE_HELP)
        fields["days"].help_text += f" Default {self.default_days}."
        return fields

    def validate_tz(self, value):
        try:
            zone(value)
        except UnknownZone:
            raise serializers.ValidationError(f'"{value[:64]}" is not an IANA time zone name (e.g. Europe/Moscow).') from None
        return value

    def validate(self, attrs):
        first, last, days = attrs.pop("from", None), attrs.pop("to", None), attrs.pop("days", None)
        tz = attrs.pop("tz")
        if days is not None and (first is not None or last is not None):
            raise serializers.ValidationError({"days": ["Give either days or from and to, not both."]})
        if (first is None) != (last is None):
            missing = "to" if last is None else "from"
            raise serializers.ValidationError({missing: ["from and to go together: give both, or neither."]})
        if first is not None:
            if first > last:
                raise serializers.ValidationError({"from": ["Must be on or before to."]})
            if (last - first).days + 1 > MAX_DATES:
                raise serializers.ValidationError({"to": [f"The window holds at most {MAX_DATES} dates."]})
            window = Window(first, last, tz)
        else:
            window = Window.of_days(days or self.default_days, tz=tz, now=clock.now())
        if window.first < date(1971, 1, 1) or window.last > date(9998, 12, 31):
            raise serializers.ValidationError({"from": ["Out of range."]})
        if not window.quarter_aligned():
            # Every zone's offset since 1972 is a whole number of quarter hours; an older one
            # (Liberia's -00:44:30) cannot be cut out of the per-quarter-hour aggregates.
            raise serializers.ValidationError({"tz": [f"{tz} had an offset off the quarter hour in this window."]})
        attrs["window"] = window
        return attrs


@extend_schema_serializer(
    examples=[OpenApiExample("one day by the hour in Kathmandu", {"interval": "hour"}, request_only=True)]
)
class TrendsFilterSerializer(WindowFilterSerializer):
    interval = serializers.ChoiceField(
        choices=INTERVALS, default="day",
        help_text="Bucket of each entry: local hour (windows of at most 31 dates), date, ISO week or month.",
    )
    compare = serializers.ChoiceField(
        choices=COMPARISONS, required=False,
        help_text="previous_period: add `previous`, the entries of the window of as many dates ending the "
        "date before `from` (while the window is in progress, counted up to the same elapsed time).",
    )

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if attrs["interval"] == "hour" and attrs["window"].days > MAX_HOURLY_DATES:
            raise serializers.ValidationError(
                {"interval": [f"hour needs a window of at most {MAX_HOURLY_DATES} dates."]}
            )
        return attrs
