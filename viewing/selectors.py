"""Reads: the four analytics metrics (docs/api.md, Analytics) and the health probe."""

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import DatabaseError, connections

from analytics_site.exceptions import database_error_summary

from . import clock, queries
from .windows import Window

HOURS = range(24)
NO_DATE = date(1970, 1, 1)
NO_HOUR = datetime(1970, 1, 1)
TREND_COUNTERS = ("starts", "finishes", "total_events", "unique_users", "unique_movies")


def clickhouse_health():
    try:
        with connections["clickhouse"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchall()
        return True, "ok"
    except DatabaseError as e:
        return False, database_error_summary(e)


def _rows(sql, params):
    with connections["clickhouse"].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def rate(numerator, denominator):
    """100 × numerator / denominator, rounded half up to 2 decimals, capped at 100.0; 0.0
    when the denominator is 0. Decimal, so 0.625 rounds to 0.63 and not (binary float) 0.62."""
    if not denominator:
        return 0.0
    value = (Decimal(100 * numerator) / Decimal(denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return float(min(value, Decimal(100)))


def _window_params(window: Window) -> dict:
    """The window as the analytics queries take it (viewing/queries.py)."""
    whole_first, whole_end = window.whole_utc_days()
    return {
        "start": window.start,
        "end": window.end,
        "whole_first": whole_first,
        "whole_end": whole_end,
        "whole_start": datetime.combine(whole_first, time()),
        "whole_end_time": datetime.combine(whole_end, time()),
    }


def _shift_params(window: Window) -> dict:
    if not window.quarter_aligned():
        # No zone's current rules get here; a historical offset (local mean time) would.
        raise ValueError(f"{window.tz}: the window does not fall on UTC quarter hours")
    return {"start": window.start, "end": window.end, **window.shift()}


def statement(endpoint: str, *, window: Window, interval: str = "day", **params) -> tuple[str, dict]:
    """The SQL and parameters an analytics read runs for a window (the benchmark times these):
    endpoint `popular` (params: limit), `user_stats` (user_id), `trends` (interval), `peak_hours`."""
    if endpoint == "popular":
        return queries.POPULAR_CONTENT, {**_window_params(window), **params}
    if endpoint == "user_stats":
        return queries.USER_STATS, {**_window_params(window), **params}
    if endpoint == "peak_hours":
        if window.whole_hours():
            return queries.PEAK_HOURS["hourly"], _shift_params(window)
        quarters = window.hour_of_day_quarters()
        # Viewers from active_span_daily's quarter bits where the offset is one number.
        return queries.PEAK_HOURS["span" if quarters else "quarterly"], {**_shift_params(window), **(quarters or {})}
    days, day_buckets = window.day_buckets(interval) if interval != "hour" else ([], [])
    pieces = window.day_pieces(interval) if interval != "hour" else None
    # Off UTC days the distinct counts come from active_span_daily, not from merging hourly
    # and quarter-hourly uniq states (queries.TRENDS_BY_SPAN says why).
    by_span = pieces is not None and any(cut != 96 or before is None for _day, cut, before, _after in pieces)
    span = {
        "span_first": pieces[0][0],
        "span_end": pieces[-1][0] + timedelta(days=1),
        "span_cuts": [cut for _day, cut, *_ in pieces],
        "span_before": [before or NO_DATE for _day, _cut, before, _after in pieces],
        "span_after": [after or NO_DATE for *_, after in pieces],
    } if by_span else {}
    constant = window.constant_cut() if by_span else None
    if constant:
        span.update(span_cut=constant[0], span_shift=constant[1], span_from=window.first, span_to=window.last)
    chosen = queries.TRENDS_BY_CONSTANT_SPAN if constant else queries.TRENDS_BY_SPAN if by_span else queries.TRENDS
    return chosen[interval], {
        **span,
        **_shift_params(window),
        # A date or hour no window holds stands in for an empty set (ClickHouse types [] as
        # Nothing, and `IN ()` is not SQL). Sets are tuples: the driver writes them as (a, b).
        "days": tuple(days or [NO_DATE]),
        "day_list": days or [NO_DATE],
        "day_buckets": day_buckets or [NO_DATE],
        "split_hours": _instants(window.split_hours(interval)),
        "quarters": _instants(window.quarters(interval)),
    }


def _instants(moments: list[datetime]) -> tuple[str, ...]:
    # As text: ClickHouse reads each as the DateTime('UTC') it is compared with (the driver
    # would send a datetime inside a tuple as a number).
    return tuple(m.strftime("%Y-%m-%d %H:%M:%S") for m in moments or [NO_HOUR])


def popular_content(*, window: Window, limit: int) -> dict:
    rows = _rows(*statement("popular", window=window, limit=limit))
    items = [
        {
            "movie_id": movie_id,
            "total_views": views,
            "unique_viewers": viewers,
            "completion_rate": rate(finishes, views),
        }
        for movie_id, views, viewers, finishes in rows
    ]
    return {"items": items, **window.fields(), "total_items": len(items)}


def user_stats(*, user_id: uuid.UUID, window: Window) -> dict:
    ((started, finished, movies, watch_seconds, most_watched),) = _rows(
        *statement("user_stats", window=window, user_id=user_id)
    )
    return {
        "user_id": user_id,
        "movies_started": started,
        "movies_finished": finished,
        "unique_movies_watched": movies,
        "total_watch_time_seconds": watch_seconds,
        "completion_rate": rate(finished, started),
        **window.fields(),
        "most_watched_movie_id": most_watched,
    }


def trend_entries(*, window: Window, interval: str = "day") -> list[dict]:
    """One entry per bucket of the window, oldest first, zero-filled."""
    found = {
        bucket: (starts, finishes, total, users, movies)
        for bucket, starts, finishes, total, users, movies in _rows(*statement("trends", window=window, interval=interval))
    }
    return [
        {
            **label,
            **dict(zip(TREND_COUNTERS, found.get(key, (0, 0, 0, 0, 0)), strict=True)),
        }
        for key, label in window.buckets(interval)
    ]


def trends(*, window: Window, interval: str = "day", compare: str | None = None) -> dict:
    result = {**window.fields(), "interval": interval, "trends": trend_entries(window=window, interval=interval)}
    if compare == "previous_period":
        result["previous"] = trend_entries(window=window.previous(now=clock.now()), interval=interval)
    return result


def peak_hours(*, window: Window) -> dict:
    found = {hour: (events, users) for hour, events, users in _rows(*statement("peak_hours", window=window))}
    hours = [
        {"hour": hour, "events_count": found.get(hour, (0, 0))[0], "unique_users": found.get(hour, (0, 0))[1]}
        for hour in HOURS
    ]
    busiest = max(hours, key=lambda h: (h["events_count"], -h["hour"]))
    return {
        **window.fields(),
        "peak_hour": busiest["hour"] if busiest["events_count"] else None,
        "peak_hours": hours,
    }


def event_time_of(*, event_id):
    """The UTC event_time (aware) of a stored event id, or None."""
    rows = _rows(queries.EVENT_TIME_OF_ID, {"id": event_id})
    # The driver gives DateTime('UTC') as a naive UTC datetime; the ORM wants it aware.
    return rows[0][0].replace(tzinfo=UTC) if rows else None
