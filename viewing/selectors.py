"""Reads: the four analytics metrics (docs/api.md, Analytics) and the health probe."""

from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import DatabaseError, connections

from analytics_site.exceptions import database_error_summary

from . import clock, queries

HOURS = range(24)


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


def window(*, days):
    """The window of `days` UTC dates ending today, today included: (first_day, last_day)."""
    last_day = clock.today()
    return last_day - timedelta(days=days - 1), last_day


def rate(numerator, denominator):
    """100 × numerator / denominator, rounded half up to 2 decimals, capped at 100.0; 0.0
    when the denominator is 0. Decimal, so 0.625 rounds to 0.63 and not (binary float) 0.62."""
    if not denominator:
        return 0.0
    value = (Decimal(100 * numerator) / Decimal(denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return float(min(value, Decimal(100)))


def popular_content(*, days, limit):
    first_day, last_day = window(days=days)
    rows = _rows(queries.POPULAR_CONTENT, {"first_day": first_day, "last_day": last_day, "limit": limit})
    items = [
        {
            "movie_id": movie_id,
            "total_views": views,
            "unique_viewers": viewers,
            "completion_rate": rate(finishes, views),
        }
        for movie_id, views, viewers, finishes in rows
    ]
    return {"items": items, "period_days": days, "total_items": len(items)}


def user_stats(*, user_id, days):
    first_day, last_day = window(days=days)
    ((started, finished, movies, watch_seconds, most_watched),) = _rows(
        queries.USER_STATS, {"user_id": user_id, "first_day": first_day, "last_day": last_day}
    )
    return {
        "user_id": user_id,
        "movies_started": started,
        "movies_finished": finished,
        "unique_movies_watched": movies,
        "total_watch_time_seconds": watch_seconds,
        "completion_rate": rate(finished, started),
        "period_days": days,
        "most_watched_movie_id": most_watched,
    }


def trends(*, days):
    first_day, last_day = window(days=days)
    found = {
        day: (starts, finishes, total, users, movies)
        for day, starts, finishes, total, users, movies in _rows(
            queries.TRENDS, {"first_day": first_day, "last_day": last_day}
        )
    }
    entries = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        starts, finishes, total, users, movies = found.get(day, (0, 0, 0, 0, 0))
        entries.append(
            {
                "date": day,
                "starts": starts,
                "finishes": finishes,
                "total_events": total,
                "unique_users": users,
                "unique_movies": movies,
            }
        )
    return {"period_days": days, "trends": entries}


def peak_hours(*, days):
    first_day, last_day = window(days=days)
    params = {
        "start": datetime.combine(first_day, time()),
        "end": datetime.combine(last_day + timedelta(days=1), time()),
    }
    found = {hour: (events, users) for hour, events, users in _rows(queries.PEAK_HOURS, params)}
    hours = [
        {"hour": hour, "events_count": found.get(hour, (0, 0))[0], "unique_users": found.get(hour, (0, 0))[1]}
        for hour in HOURS
    ]
    busiest = max(hours, key=lambda h: (h["events_count"], -h["hour"]))
    return {
        "period_days": days,
        "peak_hour": busiest["hour"] if busiest["events_count"] else None,
        "peak_hours": hours,
    }


def event_time_of(*, event_id):
    """The UTC event_time (aware) of a stored event id, or None."""
    rows = _rows(queries.EVENT_TIME_OF_ID, {"id": event_id})
    # The driver gives DateTime('UTC') as a naive UTC datetime; the ORM wants it aware.
    return rows[0][0].replace(tzinfo=UTC) if rows else None
