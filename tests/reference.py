"""A plain-Python reference of every analytics metric (docs/api.md, Analytics), in any time
zone, window, trends interval and comparison.

Computed from the true events of tests/generator.py, in the exact shape the API answers, by
the most direct reading of the definitions: each event's UTC time is turned into local time
with zoneinfo, and an event belongs to a date, hour, week or month when its local time does.
No aggregate, no shift table: nothing shared with the service but the standard library.
"""

from collections import Counter, defaultdict
from datetime import UTC, datetime, time, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo


class Window:
    """Local dates first … last (inclusive) in zone `tz`; with `until` (an aware instant) only
    the events before it."""

    def __init__(self, first, last, tz="UTC", until=None):
        self.first, self.last, self.tz, self.until = first, last, tz, until
        self.zone = ZoneInfo(tz)

    @classmethod
    def of_days(cls, days, *, today, tz="UTC"):
        return cls(today - timedelta(days=days - 1), today, tz)

    @property
    def days(self):
        return (self.last - self.first).days + 1

    def local(self, event):
        return event.event_time.replace(tzinfo=UTC).astimezone(self.zone)

    def holds(self, event):
        in_time = self.until is None or event.event_time.replace(tzinfo=UTC) < self.until
        return self.first <= self.local(event).date() <= self.last and in_time

    def fields(self):
        return {"from": self.first.isoformat(), "to": self.last.isoformat(), "tz": self.tz, "period_days": self.days}

    def previous(self, now=None):
        """As many dates before `first`; when the aware `now` is inside this window, only up to
        the same time after its first midnight as `now` is after this window's, in whole
        quarter hours."""
        before = Window(self.first - timedelta(days=self.days), self.first - timedelta(days=1), self.tz)
        start = _midnight(self.first, self.zone)
        if now is None or not start <= now < _midnight(self.last + timedelta(days=1), self.zone):
            return before
        quarters = (now - start) // timedelta(minutes=15)
        cut = _midnight(before.first, self.zone) + quarters * timedelta(minutes=15)
        if cut < _midnight(before.last + timedelta(days=1), self.zone):
            before.until = cut
        return before


def local_today(now, tz):
    """The local date of the aware instant `now` in `tz`."""
    return now.astimezone(ZoneInfo(tz)).date()


def rate(numerator, denominator):
    """Percent, half up to 2 decimals, capped at 100, 0.0 for a zero denominator."""
    if denominator == 0:
        return 0.0
    hundredths = Fraction(100 * 100 * numerator, denominator) + Fraction(1, 2)
    value = Fraction(hundredths.numerator // hundredths.denominator, 100)
    return float(min(value, 100))


def popular(events, *, window, limit=10):
    starts, finishes, viewers = Counter(), Counter(), defaultdict(set)
    for e in events:
        if window.holds(e):
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
    return {"items": items, **window.fields(), "total_items": len(items)}


def user_stats(events, *, user_id, window):
    mine = [e for e in events if e.user_id == user_id and window.holds(e)]
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
        **window.fields(),
        "most_watched_movie_id": most_watched,
    }


def _counters(of_bucket):
    return {
        "starts": sum(e.event_type == "start" for e in of_bucket),
        "finishes": sum(e.event_type == "finish" for e in of_bucket),
        "total_events": len(of_bucket),
        "unique_users": len({e.user_id for e in of_bucket}),
        "unique_movies": len({e.movie_id for e in of_bucket}),
    }


def _hour_starts(window):
    """Every local clock hour of the window as its first instant (aware, in the zone): the
    UTC hours (or, for +05:45, the UTC quarter hours) at which the local minute is 0."""
    start = _midnight(window.first, window.zone)
    end = _midnight(window.last + timedelta(days=1), window.zone)
    out, moment = [], start
    while moment < end:
        local = moment.astimezone(window.zone)
        if local.minute == 0 and local.second == 0:
            out.append(local)
        moment += timedelta(minutes=15)
    return out


def _midnight(day, zone):
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def trend_entries(events, *, window, interval="day"):
    held = [e for e in events if window.holds(e)]
    if interval == "day":
        days = [window.first + timedelta(days=i) for i in range(window.days)]
        by_day = defaultdict(list)
        for e in held:
            by_day[window.local(e).date()].append(e)
        return [{"date": d.isoformat(), **_counters(by_day[d])} for d in days]
    if interval == "hour":
        by_hour = defaultdict(list)
        for e in held:
            instant = e.event_time.replace(tzinfo=UTC)
            local = instant.astimezone(window.zone)
            first = instant - timedelta(minutes=local.minute, seconds=local.second)
            by_hour[first].append(e)
        return [{"start": h.isoformat(), **_counters(by_hour[h.astimezone(UTC)])} for h in _hour_starts(window)]

    def key(d):
        return d - timedelta(days=d.weekday()) if interval == "week" else d.replace(day=1)

    buckets = {}
    for i in range(window.days):
        d = window.first + timedelta(days=i)
        buckets.setdefault(key(d), max(key(d), window.first))
    grouped = defaultdict(list)
    for e in held:
        grouped[key(window.local(e).date())].append(e)
    return [{"start": start.isoformat(), **_counters(grouped[k])} for k, start in buckets.items()]


def trends(events, *, window, interval="day", compare=None, now=None):
    out = {**window.fields(), "interval": interval, "trends": trend_entries(events, window=window, interval=interval)}
    if compare == "previous_period":
        out["previous"] = trend_entries(events, window=window.previous(now), interval=interval)
    return out


def peak_hours(events, *, window):
    counts, users = Counter(), defaultdict(set)
    for e in events:
        if window.holds(e):
            hour = window.local(e).hour
            counts[hour] += 1
            users[hour].add(e.user_id)
    hours = [{"hour": h, "events_count": counts[h], "unique_users": len(users[h])} for h in range(24)]
    peak = None
    for h in range(24):
        if counts[h] and (peak is None or counts[h] > counts[peak]):
            peak = h
    return {**window.fields(), "peak_hour": peak, "peak_hours": hours}


def percent_change(now, previous):
    """100 × (now − previous) / previous, half up to 2 decimals; None when previous is 0."""
    if previous == 0:
        return None
    hundredths = Fraction(100 * 100 * (now - previous), previous)
    sign = -1 if hundredths < 0 else 1
    value = abs(hundredths) + Fraction(1, 2)
    return sign * float(Fraction(value.numerator // value.denominator, 100))


def window_of(today, *, days=None, first=None, last=None, tz="UTC"):
    """A Window from the parameters a request gives (days, or from/to)."""
    if first is not None:
        return Window(first, last, tz)
    return Window.of_days(days, today=today, tz=tz)

