"""A plain-Python reference of every analytics metric (docs/api.md, Analytics).

Computed from the true events of tests/generator.py, in the exact shape the API answers.
"""

from collections import Counter, defaultdict
from datetime import timedelta
from fractions import Fraction


def in_window(event, today, days):
    return today - timedelta(days=days - 1) <= event.event_time.date() <= today


def rate(numerator, denominator):
    """Percent, half up to 2 decimals, capped at 100, 0.0 for a zero denominator."""
    if denominator == 0:
        return 0.0
    hundredths = Fraction(100 * 100 * numerator, denominator) + Fraction(1, 2)
    value = Fraction(hundredths.numerator // hundredths.denominator, 100)
    return float(min(value, 100))


def popular(events, *, today, days=7, limit=10):
    starts, finishes, viewers = Counter(), Counter(), defaultdict(set)
    for e in events:
        if in_window(e, today, days):
            viewers[e.movie_id].add(e.user_id)
            starts[e.movie_id] += e.event_type == "start"
            finishes[e.movie_id] += e.event_type == "finish"
    movies = [m for m in viewers if starts[m] > 0]
    movies.sort(key=lambda m: (-starts[m], -len(viewers[m]), str(m)))
    items = [
        {
            "movie_id": str(m),
            "total_views": starts[m],
            "unique_viewers": len(viewers[m]),
            "completion_rate": rate(finishes[m], starts[m]),
        }
        for m in movies[:limit]
    ]
    return {"items": items, "period_days": days, "total_items": len(items)}


def user_stats(events, *, user_id, today, days=30):
    mine = [e for e in events if e.user_id == user_id and in_window(e, today, days)]
    started = sum(e.event_type == "start" for e in mine)
    finished = sum(e.event_type == "finish" for e in mine)
    starts_per_movie = Counter(e.movie_id for e in mine if e.event_type == "start")
    most_watched = None
    if starts_per_movie:
        most = max(starts_per_movie.values())
        most_watched = min(str(m) for m, n in starts_per_movie.items() if n == most)
    return {
        "user_id": str(user_id),
        "movies_started": started,
        "movies_finished": finished,
        "unique_movies_watched": len({e.movie_id for e in mine}),
        "total_watch_time_seconds": sum(e.position_seconds for e in mine if e.event_type == "finish"),
        "completion_rate": rate(finished, started),
        "period_days": days,
        "most_watched_movie_id": most_watched,
    }


def trends(events, *, today, days=7):
    entries = []
    for offset in range(days - 1, -1, -1):
        day = today - timedelta(days=offset)
        of_day = [e for e in events if e.event_time.date() == day]
        entries.append(
            {
                "date": day.isoformat(),
                "starts": sum(e.event_type == "start" for e in of_day),
                "finishes": sum(e.event_type == "finish" for e in of_day),
                "total_events": len(of_day),
                "unique_users": len({e.user_id for e in of_day}),
                "unique_movies": len({e.movie_id for e in of_day}),
            }
        )
    return {"period_days": days, "trends": entries}


def peak_hours(events, *, today, days=7):
    counts, users = Counter(), defaultdict(set)
    for e in events:
        if in_window(e, today, days):
            counts[e.event_time.hour] += 1
            users[e.event_time.hour].add(e.user_id)
    hours = [{"hour": h, "events_count": counts[h], "unique_users": len(users[h])} for h in range(24)]
    peak = None
    for h in range(24):
        if counts[h] and (peak is None or counts[h] > counts[peak]):
            peak = h
    return {"period_days": days, "peak_hour": peak, "peak_hours": hours}
