"""Reads of viewing engagement: the summary, a movie's retention curve, concurrency over time
and who is watching now.

A view is the events of one (session, movie) pair inside the window; the windowed reads take
views from view_segments (15-minute pieces merged per window), realtime reads recent_events.
Time zones are handled here, in Python: the queries only ever see UTC instants on quarter
hours, and the local dates and hours are laid over the rows they return.
"""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from uuid import UUID

from django.db import connections
from rest_framework.exceptions import ValidationError

from . import clock
from . import queries_engagement as sql
from .selectors import rate
from .windows import Window, local_midnight, percent_change

SLOT = timedelta(minutes=15)
MAX_CURVE_POINTS = 2000
TOP_MOVIES = 10


class ParameterInvalid(ValidationError):
    """A parameter that passed its own checks but not the data's (a retention curve that would
    be too long): a 400 naming the parameter, as for any other bad parameter."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__({name: [message]})


def _rows(statement, params):
    with connections["clickhouse"].cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


def half_up(numerator: int | Decimal, denominator: int | Decimal) -> float:
    """numerator / denominator rounded half away from zero to 2 decimals (Decimal, so 0.625 is
    0.63 and not the binary float's 0.62)."""
    return float((Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP))


# --- Windows --------------------------------------------------------------------------------
# A window is a viewing.windows.Window (local dates of a zone; start/end its UTC instants).
def _params(window):
    return {"start": window.start, "end": window.end}


def buckets(window: Window, interval: str) -> list[tuple[dict, datetime, datetime]]:
    """(label, start, end) of each local date (`day`) or local clock hour (`hour`) of the window,
    oldest first; start/end are naive UTC instants on quarter hours."""
    zone = window.zone
    if interval == "day":
        return [
            ({"date": day}, local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone))
            for day in window.dates()
        ]
    # Local clock hours: consecutive quarter hours with the same local date, hour and UTC offset
    # (so the repeated hour of a day whose clock goes back is two hours).
    found, moment, end = [], window.start, window.end
    while moment < end:
        local = moment.replace(tzinfo=UTC).astimezone(zone)
        ident = (local.date(), local.hour, local.utcoffset())
        if not found or found[-1][0] != ident:
            found.append([ident, local, moment, moment + SLOT])
        else:
            found[-1][3] = moment + SLOT
        moment += SLOT
    return [({"start": local.isoformat()}, start, stop) for _ident, local, start, stop in found]


def _naive(value):
    return value.replace(tzinfo=None) if isinstance(value, datetime) and value.tzinfo else value


def utc_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Summary --------------------------------------------------------------------------------
SUMMARY_METRICS = (
    "starts", "finishes", "total_events", "unique_users", "unique_movies", "views",
    "watch_time_seconds", "avg_view_duration_seconds", "completion_rate", "peak_concurrent_views",
)


def _summary_of(window):
    params = _params(window)
    ((starts, finishes, events, users, movies),) = _rows(sql.SUMMARY_COUNTERS, params)
    ((views, watched, peak),) = _rows(sql.SUMMARY_VIEWS, params)
    return {
        **window.fields(),
        "starts": starts,
        "finishes": finishes,
        "total_events": events,
        "unique_users": users,
        "unique_movies": movies,
        "views": views,
        "watch_time_seconds": watched,
        "avg_view_duration_seconds": half_up(watched, views) if views else 0.0,
        "completion_rate": rate(finishes, starts),
        "peak_concurrent_views": peak,
    }


def summary(*, window: Window, compare: str | None = None) -> dict:
    """The window's headline numbers; with compare="previous_period" also the previous window's
    and the change of each metric against it."""
    result = _summary_of(window)
    if compare == "previous_period":
        previous = _summary_of(window.previous(now=clock.now()))
        result["previous"] = previous
        result["change"] = percent_change(result, previous, list(SUMMARY_METRICS))
    return result


# --- Retention ------------------------------------------------------------------------------
def retention(*, movie_id: UUID, window: Window, bucket: int = 60) -> dict:
    """The audience retention curve of one movie: at each multiple of `bucket` up to the
    highest position reached, the views that went through it (low ≤ position ≤ high)."""
    ((views, watched, highest, (indexes, steps)),) = _rows(
        sql.RETENTION, {**_params(window), "movie_id": movie_id, "bucket": bucket}
    )
    curve = []
    if views:
        points = highest // bucket + 1
        if points > MAX_CURVE_POINTS:
            raise ParameterInvalid(
                "bucket",
                f"The curve would have {points} points (positions up to {highest} s); at most "
                f"{MAX_CURVE_POINTS}: use a bucket of at least {-(-highest // (MAX_CURVE_POINTS - 1))} seconds.",
            )
        step_at = dict(zip(indexes, steps, strict=True))
        viewers = 0
        for index in range(points):
            viewers += step_at.get(index, 0)
            curve.append({"position": index * bucket, "viewers": viewers, "percent": half_up(100 * viewers, views)})
    return {
        "movie_id": str(movie_id),
        **window.fields(),
        "views": views,
        "bucket_seconds": bucket,
        "avg_view_duration_seconds": half_up(watched, views) if views else 0.0,
        "curve": curve,
    }


# --- Concurrency ----------------------------------------------------------------------------
def concurrency(*, window: Window, interval: str = "day") -> dict:
    """Per local date or hour of the window: the peak of concurrent views (views formed over the
    whole window) at an instant of the bucket, and the earliest instant of that peak."""
    # The driver gives some DateTime('UTC') values aware and others naive: all naive UTC here.
    slots = [[_naive(value) for value in row] for row in _rows(sql.CONCURRENCY_SLOTS, _params(window))]
    entries, i, carried = [], 0, 0
    for label, start, end in buckets(window, interval):
        while i < len(slots) and slots[i][0] < start:
            carried = slots[i][3]
            i += 1
        # The count at the bucket's first instant is the one carried over, unless the live
        # count changes at that very second (then the slot's own rows hold it).
        starts_with_change = i < len(slots) and slots[i][4] == start
        peak, peak_at = (0, None) if starts_with_change else (carried, start)
        while i < len(slots) and slots[i][0] < end:
            _slot, slot_peak, slot_peak_at, carried, _first = slots[i]
            if slot_peak > peak:  # strictly: the earliest instant of the peak wins
                peak, peak_at = slot_peak, slot_peak_at
            i += 1
        entries.append({**label, "peak_concurrent_views": peak, "peak_at": utc_text(peak_at) if peak else None})
    return {**window.fields(), "interval": interval, "concurrency": entries}


# --- Realtime -------------------------------------------------------------------------------
def realtime(*, window: int = 300) -> dict:
    """Views live now: those formed by the events of the last `window` seconds that have no
    finish among them."""
    as_of = clock.now()
    naive = as_of.replace(tzinfo=None)
    rows = _rows(sql.REALTIME, {"since": naive - timedelta(seconds=window), "as_of": naive})
    viewers = set()
    for _movie, _live, users in rows:
        viewers.update(users)
    top = sorted(rows, key=lambda row: (-row[1], str(row[0])))[:TOP_MOVIES]
    return {
        "as_of": utc_text(as_of),
        "window_seconds": window,
        "live_views": sum(row[1] for row in rows),
        "viewers": len(viewers),
        "top_movies": [{"movie_id": str(movie), "live_views": live} for movie, live, _users in top],
    }
