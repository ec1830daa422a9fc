"""Analytics windows: a range of local dates in an IANA time zone, its UTC instants, its
buckets (hour, day, ISO week, month), the previous period, and the percent change between two
periods. Pure: no I/O; every analytics endpoint reads through a Window.

A local date covers the instants from its 00:00 to the next date's 00:00 local time: 23, 24 or
25 hours on the days a zone changes its offset. The aggregate tables are kept per UTC quarter
hour, day and hour (viewing/ddl.py); `shift()` gives the queries the zone's offsets over the
window so ClickHouse turns each UTC quarter hour into local time with Python's time-zone
database as the only source of truth.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_DATES = 366
MAX_HOURLY_DATES = 31
INTERVALS = ("day", "hour", "week", "month")
COMPARISONS = ("previous_period",)
# Every offset in use (and every change of offset) falls on a quarter hour (+05:45, +12:45, ...),
# which is why the finest aggregate is per 15 minutes.
QUARTER = 900
QUARTER_DELTA = timedelta(seconds=QUARTER)


class UnknownZone(ValueError):
    """Not an IANA time-zone name."""


@functools.lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA zone of that name, or UnknownZone."""
    if not isinstance(name, str) or not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        raise UnknownZone(name)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UnknownZone(name) from None


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of a local date, as a naive UTC datetime (how the tables store time)."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC).replace(tzinfo=None)


def local_today(tz: ZoneInfo, now: datetime) -> date:
    """The local date of the aware instant `now`."""
    return now.astimezone(tz).date()


@dataclass(frozen=True)
class Window:
    """The local dates `first` … `last` (both included) in the zone named `tz`. `until` (naive
    UTC, on a quarter hour) ends its events earlier than the end of `last`: a previous period
    cut at the span that has passed of the window it is compared with (`previous`)."""

    first: date
    last: date
    tz: str = "UTC"
    until: datetime | None = None

    @classmethod
    def of_days(cls, days: int, *, tz: str = "UTC", now: datetime) -> Window:
        """The `days` local dates ending today (the local date of `now`), today included."""
        last = local_today(zone(tz), now)
        return cls(last - timedelta(days=days - 1), last, tz)

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.tz)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def start(self) -> datetime:
        """The window's first instant (naive UTC)."""
        return local_midnight(self.first, self.zone)

    @property
    def end(self) -> datetime:
        """The instant after the window's events (naive UTC): the next date's local midnight,
        or `until` when that comes first."""
        after = local_midnight(self.last + timedelta(days=1), self.zone)
        return min(after, self.until) if self.until is not None else after

    def dates(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.days)]

    def previous(self, now: datetime | None = None) -> Window:
        """The previous period: as many dates, ending the date before `first`. When the aware
        instant `now` lies inside this window (a window ending today), the previous period
        counts only as much of itself as has passed of this one — the same elapsed time from
        its first midnight, in whole quarter hours (the grain of the aggregates) — so that
        today so far is compared with yesterday up to the same time, not with all of it."""
        before = Window(self.first - timedelta(days=self.days), self.first - timedelta(days=1), self.tz)
        if now is None:
            return before
        moment = now.astimezone(UTC).replace(tzinfo=None)
        if not self.start <= moment < self.end:
            return before
        cut = before.start + (moment - self.start) // QUARTER_DELTA * QUARTER_DELTA
        return replace(before, until=cut) if cut < before.end else before

    def fields(self) -> dict:
        """What every analytics response says about its window."""
        return {"from": self.first, "to": self.last, "tz": self.tz, "period_days": self.days}

    def whole_utc_days(self) -> tuple[date, date]:
        """The UTC dates wholly inside the window, as [first, end) (empty when first == end):
        the part a daily aggregate table answers; the rest of the window is its edges."""
        start, end = self.start, self.end
        first = start.date() if start.time() == time() else start.date() + timedelta(days=1)
        last_end = end.date()
        return (first, last_end) if first < last_end else (start.date(), start.date())

    def shift(self) -> dict:
        """Query parameters turning a UTC instant of the window into local time: `transitions`
        (epoch seconds at which the offset changes, ascending, ending with a sentinel past the
        window) and `offsets` (seconds east of UTC before the first and after each change), so
        local = t + offsets[count(transitions <= t) + 1]."""
        tz = self.zone
        start, end = self.start, self.end
        transitions, offsets = [], [_offset(tz, start)]
        day = start
        while day < end:  # a day at a time: zones change offset at most once a day
            after = min(day + timedelta(days=1), end)
            probe = after if after < end else after - timedelta(seconds=1)
            if _offset(tz, probe) != offsets[-1]:
                moment = _transition(tz, day, probe)
                transitions.append(_epoch(moment))
                offsets.append(_offset(tz, moment))
            day = after
        transitions.append(_epoch(end) + 1)
        offsets.append(offsets[-1])
        return {"transitions": transitions, "offsets": offsets}

    def quarter_aligned(self) -> bool:
        """Whether the window starts, ends and changes offset on UTC quarter hours (true of
        every zone's current rules): then the per-quarter-hour table answers it exactly."""
        shift = self.shift()
        return all(t % QUARTER == 0 for t in shift["transitions"][:-1]) and all(
            _epoch(moment) % QUARTER == 0 for moment in (self.start, self.end)
        )

    def day_buckets(self, interval: str) -> tuple[list[date], list[date]]:
        """The UTC dates lying wholly inside the window and inside one bucket of the interval
        (day, week or month), and that bucket's key for each: what the daily tables can answer.
        Every date in UTC; most dates of a week or month elsewhere; none for local days off UTC."""
        first, end = self.whole_utc_days()
        days, keys = [], []
        day = first
        while day < end:
            midnight = datetime.combine(day, time())
            keys_of = {_bucket_key(interval, _local(self.zone, m)) for m in (midnight, midnight + _LAST_QUARTER)}
            if len(keys_of) == 1:
                days.append(day)
                keys.append(keys_of.pop())
            day += timedelta(days=1)
        return days, keys

    def day_pieces(self, interval: str) -> list[tuple[date, int, date | None, date | None]] | None:
        """For the distinct counts of day, week or month buckets off UTC (active_span_daily):
        per UTC date overlapping the window, (date, k, before, after): the bucket keys of its
        quarter hours before quarter k (0 … 96) and from k on; None where those quarters are
        outside the window. k is where a bucket (or the window) starts inside the date, 96
        when none does. None when some date holds two such starts (no zone's current rules)."""
        start, end = self.start, self.end
        starts = {local_midnight(max(key, self.first), self.zone) for key, _label in self.buckets(interval)}
        out = []
        day = start.date()
        while datetime.combine(day, time()) < end:
            midnight = datetime.combine(day, time())
            inside = sorted(t for t in starts | {end} if midnight < t < midnight + timedelta(days=1))
            if len(inside) > 1 or any((t - midnight) % QUARTER_DELTA for t in inside):
                return None
            cut = inside[0] if inside else midnight + timedelta(days=1)
            out.append((
                day,
                int((cut - midnight) / QUARTER_DELTA),
                self._key_at(interval, midnight) if start <= midnight else None,
                self._key_at(interval, cut) if inside and cut < end else None,
            ))
            day += timedelta(days=1)
        return out

    def constant_cut(self) -> tuple[int, int] | None:
        """Where the offset is one number over the window (and no `until` cuts it): (k, shift)
        such that the quarter hours of UTC date d before quarter k have the local date d + shift
        and the others d + shift + 1 (k = 96: all of them d + shift). Else None."""
        shift = self.shift()
        if len(shift["transitions"]) > 1 or self.until is not None:
            return None
        days, rest = divmod(shift["offsets"][0], 86400)
        return ((86400 - rest) // QUARTER if rest else 96), days

    def hour_of_day_quarters(self) -> dict | None:
        """For peak hours off whole hours from active_span_daily's quarter bits: the window's
        first and last UTC dates, the bits of their quarter hours inside the window (as decimal
        text: UInt128), and `quarter_shift`, what to add to a UTC quarter of day (mod 96) for
        the local one. None when the offset changes inside the window (then the quarter-hourly
        states answer)."""
        shift = self.shift()
        if len(shift["transitions"]) > 1:
            return None
        start, end = self.start, self.end
        first_day, last_day = start.date(), (end - QUARTER_DELTA).date()
        every = (1 << 96) - 1
        from_start = every ^ ((1 << _quarter_of_day(start)) - 1)
        before_end = (1 << (_quarter_of_day(end) or 96)) - 1
        if first_day == last_day:
            from_start &= before_end
        return {
            "first_day": first_day,
            "last_day": last_day,
            "first_mask": str(from_start),
            "last_mask": str(before_end if first_day != last_day else from_start),
            "quarter_shift": shift["offsets"][0] // QUARTER % 96,
        }

    def _key_at(self, interval: str, naive_utc: datetime) -> date:
        return _bucket_key(interval, _local(self.zone, naive_utc))

    def split_hours(self, interval: str) -> list[datetime]:
        """The UTC hours (naive UTC starts) of the window that two buckets share: those holding
        a bucket's first instant off the hour (18:15 UTC, a Kathmandu midnight). The other whole
        hours of the window each lie in one bucket."""
        out = []
        for key, _label in self.buckets(interval):
            first = (
                datetime.fromtimestamp(key, UTC).replace(tzinfo=None) if interval == "hour"
                else local_midnight(max(key, self.first), self.zone)
            )
            if first.minute or first.second:
                out.append(first.replace(minute=0, second=0))
        return out

    def quarters(self, interval: str) -> list[datetime]:
        """The UTC quarter hours (naive UTC starts) no whole UTC hour of the window covers: those
        of the split hours, and those before the window's first whole hour and after its last
        (a Kathmandu window starts at 18:15 UTC)."""
        start, end = self.start, self.end
        first_hour = start if start.minute == 0 else start.replace(minute=0) + timedelta(hours=1)
        last_hour = end.replace(minute=0)
        out = [start + timedelta(minutes=15 * i) for i in range(int((min(first_hour, end) - start) / QUARTER_DELTA))]
        if last_hour >= first_hour:
            out += [last_hour + timedelta(minutes=15 * i) for i in range(int((end - last_hour) / QUARTER_DELTA))]
        for hour in self.split_hours(interval):
            out += [q for q in (hour + timedelta(minutes=15 * i) for i in range(4)) if start <= q < end]
        return sorted(set(out))

    def whole_hours(self) -> bool:
        """Whether every UTC hour of the window is one local clock hour (UTC and the whole-hour
        zones): then the hourly table answers hours of day."""
        shift = self.shift()
        return all(t % 3600 == 0 for t in shift["transitions"][:-1]) and all(
            o % 3600 == 0 for o in shift["offsets"]
        ) and _epoch(self.start) % 3600 == 0 and _epoch(self.end) % 3600 == 0

    def buckets(self, interval: str) -> list[tuple[object, dict]]:
        """(key, label) per bucket of the interval, oldest first. The key is what the queries
        group by (a local date, or for `hour` the epoch second the local hour starts); the label
        is how the answer names the bucket: {"date": ...} for days, {"start": ...} otherwise."""
        if interval == "day":
            return [(d, {"date": d}) for d in self.dates()]
        if interval == "hour":
            tz, out = self.zone, []
            # Every hour of the dates, also those after `until` (zero-filled).
            moment, end = self.start, local_midnight(self.last + timedelta(days=1), tz)
            while moment < end:
                aware = moment.replace(tzinfo=UTC)
                out.append((_epoch(moment), {"start": aware.astimezone(tz).isoformat()}))
                moment += timedelta(hours=1)
            return out
        seen, out = set(), []
        for d in self.dates():
            key = d - timedelta(days=d.weekday()) if interval == "week" else d.replace(day=1)
            if key not in seen:
                seen.add(key)
                out.append((key, {"start": max(key, self.first)}))
        return out


_LAST_QUARTER = timedelta(hours=23, minutes=45)


def _local(tz: ZoneInfo, naive_utc: datetime) -> date:
    return naive_utc.replace(tzinfo=UTC).astimezone(tz).date()


def _bucket_key(interval: str, local_date: date) -> date:
    if interval == "week":
        return local_date - timedelta(days=local_date.weekday())
    if interval == "month":
        return local_date.replace(day=1)
    return local_date


def _quarter_of_day(naive_utc: datetime) -> int:
    return (naive_utc.hour * 3600 + naive_utc.minute * 60 + naive_utc.second) // QUARTER


def _epoch(naive_utc: datetime) -> int:
    return int(naive_utc.replace(tzinfo=UTC).timestamp())


def _offset(tz: ZoneInfo, naive_utc: datetime) -> int:
    return int(naive_utc.replace(tzinfo=UTC).astimezone(tz).utcoffset().total_seconds())


def _transition(tz: ZoneInfo, low: datetime, high: datetime) -> datetime:
    """The first instant in (low, high] whose offset differs from low's (to the second)."""
    before = _offset(tz, low)
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) // 2
        if _offset(tz, middle) == before:
            low = middle
        else:
            high = middle
    return high


def percent_change(now: dict, previous: dict, fields: list[str]) -> dict:
    """For each field: 100 × (now − previous) / previous, rounded half up to 2 decimals, or
    None when previous is 0 (the `change` of a comparison with the previous period)."""
    out = {}
    for field in fields:
        before, after = previous[field], now[field]
        if not before:
            out[field] = None
            continue
        value = (Decimal(str(after)) - Decimal(str(before))) * 100 / Decimal(str(before))
        out[field] = float(value.quantize(Decimal("0.01"), ROUND_HALF_UP))
    return out
