"""A plain-Python reference of the engagement metrics: summary, retention, concurrency and
realtime, computed from the true events (tests/generator.Event, naive UTC times) by brute force.

Deliberately naive and independent of the service's code: an event is in the window when its
local date (zoneinfo) is one of the window's dates; views are formed by grouping the window's
events; concurrency counts live views at candidate instants one by one.
"""

from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from tests.reference import Window, rate


def half_up(numerator, denominator):
    """numerator / denominator to 2 decimals, halves away from zero."""
    value = Fraction(numerator) / Fraction(denominator)
    sign = -1 if value < 0 else 1
    hundredths = abs(value) * 100 + Fraction(1, 2)
    return float(sign * Fraction(hundredths.numerator // hundredths.denominator, 100))


def local(moment, tz):
    return moment.replace(tzinfo=UTC).astimezone(ZoneInfo(tz))


def in_window(event, first_day, last_day, tz):
    return first_day <= local(event.event_time, tz).date() <= last_day


def window_events(events, first_day, last_day, tz):
    return [e for e in events if in_window(e, first_day, last_day, tz)]


def views_of(events):
    """{(session, movie): {"first", "last", "low", "high", "users", "finished"}}"""
    views = {}
    for e in events:
        if e.session_id is None:
            continue
        v = views.setdefault(
            (e.session_id, e.movie_id),
            {"first": e.event_time, "last": e.event_time, "low": e.position_seconds,
             "high": e.position_seconds, "users": set(), "finished": False, "movie": e.movie_id},
        )
        v["first"] = min(v["first"], e.event_time)
        v["last"] = max(v["last"], e.event_time)
        v["low"] = min(v["low"], e.position_seconds)
        v["high"] = max(v["high"], e.position_seconds)
        v["users"].add(e.user_id)
        v["finished"] |= e.event_type == "finish"
    return views


def live_at(views, moment):
    return sum(v["first"] <= moment <= v["last"] for v in views)


def header(first_day, last_day, tz):
    return {"from": first_day.isoformat(), "to": last_day.isoformat(), "tz": tz,
            "period_days": (last_day - first_day).days + 1}


def _summary(events, first_day, last_day, tz, until=None):
    mine = [e for e in window_events(events, first_day, last_day, tz)
            if until is None or e.event_time.replace(tzinfo=UTC) < until]
    views = list(views_of(mine).values())
    starts = sum(e.event_type == "start" for e in mine)
    finishes = sum(e.event_type == "finish" for e in mine)
    watched = sum(v["high"] - v["low"] for v in views)
    return {
        **header(first_day, last_day, tz),
        "starts": starts,
        "finishes": finishes,
        "total_events": len(mine),
        "unique_users": len({e.user_id for e in mine}),
        "unique_movies": len({e.movie_id for e in mine}),
        "views": len(views),
        "watch_time_seconds": watched,
        "avg_view_duration_seconds": half_up(watched, len(views)) if views else 0.0,
        "completion_rate": rate(finishes, starts),
        # The most live views is reached at some view's first instant.
        "peak_concurrent_views": max((live_at(views, v["first"]) for v in views), default=0),
    }


METRICS = ["starts", "finishes", "total_events", "unique_users", "unique_movies", "views",
           "watch_time_seconds", "avg_view_duration_seconds", "completion_rate", "peak_concurrent_views"]


def summary(events, *, first_day, last_day, tz="UTC", compare=False, now=None):
    """With compare: the previous period up to the same elapsed time when `now` (aware) is in
    the window (tests.reference.Window.previous)."""
    result = _summary(events, first_day, last_day, tz)
    if compare:
        days = (last_day - first_day).days + 1
        until = Window(first_day, last_day, tz).previous(now).until
        previous = _summary(events, first_day - timedelta(days=days), first_day - timedelta(days=1), tz, until)
        result["previous"] = previous
        result["change"] = {
            m: half_up(100 * (Fraction(str(result[m])) - Fraction(str(previous[m]))), Fraction(str(previous[m])))
            if previous[m] else None
            for m in METRICS
        }
    return result


def retention(events, *, movie_id, first_day, last_day, tz="UTC", bucket=60):
    mine = [e for e in window_events(events, first_day, last_day, tz) if e.movie_id == movie_id]
    views = list(views_of(mine).values())
    watched = sum(v["high"] - v["low"] for v in views)
    curve = []
    if views:
        for position in range(0, max(v["high"] for v in views) + 1, bucket):
            viewers = sum(v["low"] <= position <= v["high"] for v in views)
            curve.append({"position": position, "viewers": viewers, "percent": half_up(100 * viewers, len(views))})
    return {
        "movie_id": str(movie_id),
        **header(first_day, last_day, tz),
        "views": len(views),
        "bucket_seconds": bucket,
        "avg_view_duration_seconds": half_up(watched, len(views)) if views else 0.0,
        "curve": curve,
    }


def local_buckets(first_day, last_day, tz, interval):
    """(key, value, start, end) in naive UTC, found minute by minute: a new bucket wherever the
    local date (day) or the local date, hour and offset (hour) changes."""
    zone = ZoneInfo(tz)
    # The first instant whose local date is first_day: searched minute by minute from a day
    # before (no zone is more than 14 hours from UTC).
    moment = datetime.combine(first_day - timedelta(days=1), time())
    while local(moment, tz).date() < first_day:
        moment += timedelta(minutes=1)
    buckets = []
    while local(moment, tz).date() <= last_day:
        here = moment.replace(tzinfo=UTC).astimezone(zone)
        ident = here.date() if interval == "day" else (here.date(), here.hour, here.utcoffset())
        if not buckets or buckets[-1][0] != ident:
            buckets.append([ident, here, moment, None])
        buckets[-1][3] = moment + timedelta(minutes=1)
        moment += timedelta(minutes=1)
    if interval == "day":
        return [("date", b[1].date().isoformat(), b[2], b[3]) for b in buckets]
    return [("start", b[1].isoformat(), b[2], b[3]) for b in buckets]


def concurrency(events, *, first_day, last_day, tz="UTC", interval="day"):
    views = list(views_of(window_events(events, first_day, last_day, tz)).values())
    entries = []
    for key, value, start, end in local_buckets(first_day, last_day, tz, interval):
        # The count changes upwards only at a view's first instant: the peak of the bucket is
        # at its start or at one of those inside it; the earliest one with the most wins.
        candidates = sorted({start} | {v["first"] for v in views if start <= v["first"] < end})
        peak, peak_at = 0, None
        for moment in candidates:
            live = live_at(views, moment)
            if live > peak:
                peak, peak_at = live, moment
        entries.append({key: value, "peak_concurrent_views": peak,
                        "peak_at": peak_at.strftime("%Y-%m-%dT%H:%M:%SZ") if peak_at else None})
    return {**header(first_day, last_day, tz), "interval": interval, "concurrency": entries}


def realtime(events, *, as_of, window=300):
    """as_of: naive UTC."""
    recent = [e for e in events if as_of - timedelta(seconds=window) < e.event_time <= as_of]
    live = [v for v in views_of(recent).values() if not v["finished"]]
    per_movie = defaultdict(int)
    for v in live:
        per_movie[v["movie"]] += 1
    top = sorted(per_movie.items(), key=lambda item: (-item[1], str(item[0])))[:10]
    return {
        "as_of": as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "window_seconds": window,
        "live_views": len(live),
        "viewers": len(set().union(*(v["users"] for v in live))),
        "top_movies": [{"movie_id": str(m), "live_views": n} for m, n in top],
    }
