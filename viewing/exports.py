"""Raw events out: one viewer's events, or a window's, as CSV, JSON lines or Parquet written by
the engine and streamed block by block (analytics_site/chdb_backend/streaming.py), so the
service's memory does not grow with the size of an export.

Every column of viewing_events, oldest first (ties by id, so an export is reproducible).
Times are UTC in ISO 8601 with `Z` (CSV, JSON lines) or a UTC timestamp (Parquet); a missing
session is an empty CSV field or `null`; metadata is the stored JSON text.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from analytics_site.chdb_backend.streaming import query_stream, rewritten_stream, statements_stream

from . import ddl
from .queries import EVENT_COLUMNS


@dataclass(frozen=True)
class ExportFormat:
    engine_format: str
    content_type: str
    extension: str
    continued_format: str = ""  # the format of a slice after the first (CSV: no header again)


FORMATS = {
    "csv": ExportFormat("CSVWithNames", "text/csv; charset=utf-8", "csv", "CSV"),
    "ndjson": ExportFormat("JSONEachRow", "application/x-ndjson", "ndjson", "JSONEachRow"),
    "parquet": ExportFormat("Parquet", "application/vnd.apache.parquet", "parquet"),
}

_COLUMNS = ", ".join(EVENT_COLUMNS)
# Constant settings of every export (no input in them).
_COMMON_SETTINGS = """
    date_time_output_format = 'iso',
    format_csv_null_representation = '',
    output_format_csv_crlf_end_of_line = 1,
    output_format_parallel_formatting = 0,
    max_block_size = 8192,
    max_execution_time = 0"""
# Why these: ISO times with Z, as the API writes them; an empty CSV field for a missing
# session (RFC 4180 readers know no \N) and CRLF line ends (RFC 4180); the output formatted
# by the thread that reads, not by a pool that holds several formatted blocks at once
# (-12 MB per export at 10M events, measured); blocks of 8,192 rows; no time limit (a
# 10M-event export takes longer than CLICKHOUSE_QUERY_TIMEOUT, and a client that leaves
# cancels it).

# A slice of a window (CSV, JSON lines, the rows of a Parquet file): read and sorted in
# memory by one thread, whatever the number of parts. Reading in the table's order instead
# (optimize_read_in_order) costs ~3.6 MB per part of the table on top of the sort (measured:
# 7 parts, 25 MB), so it grows with the parts a month partition happens to have; a second
# thread made a slice no faster on 2 shared cores (0.13-0.19 s against 0.26-0.36 s for a
# 12-hour slice of 200,000 events).
SLICE_SETTINGS = f"""
SETTINGS{_COMMON_SETTINGS},
    optimize_read_in_order = 0,
    max_threads = 1
"""

# One file of the whole window in one query: Parquet on a ClickHouse server (whose queries
# cannot read each other's output, see SLICES_AS_ONE_FILE). The days read in order and sorted
# one at a time, without buffering ahead (measured on 1M events: 29 MB instead of 86 MB);
# row groups and bloom filters as in SLICES_AS_ONE_FILE.
WHOLE_SETTINGS = f"""
SETTINGS{_COMMON_SETTINGS},
    output_format_parquet_row_group_size = 100000,
    output_format_parquet_write_bloom_filter = 0,
    read_in_order_use_buffering = 0
"""

_FILTERS = """
    AND ({user_id:Nullable(UUID)} IS NULL OR user_id = {user_id:Nullable(UUID)})
    AND ({movie_id:Nullable(UUID)} IS NULL OR movie_id = {movie_id:Nullable(UUID)})
    AND ({event_type:Nullable(String)} IS NULL OR event_type = {event_type:Nullable(String)})"""

# One viewer's events: the bloom filter on user_id skips the granules without them.
USER_EVENTS = f"""
SELECT {_COLUMNS}
FROM viewing_events
WHERE user_id = {{user_id:UUID}}
ORDER BY event_time, id
{SLICE_SETTINGS}"""

# A window's events, optionally of one user, one movie, one type (a NULL parameter is no
# filter), as one query. ORDER BY starts with the table's first sort key, toDate(event_time),
# so the engine reads the days in order and sorts one day at a time instead of the whole
# window. Parquet on a server only.
WINDOW_EVENTS = f"""
SELECT {_COLUMNS}
FROM viewing_events
WHERE event_time >= {{start:DateTime('UTC')}} AND event_time < {{end:DateTime('UTC')}}{_FILTERS}
ORDER BY toDate(event_time), event_time, id
{WHOLE_SETTINGS}"""

# How many of the window's events fall in each quarter hour (only those with events), to cut
# the window into slices of about SLICE_ROWS events. Reads event_time and the filtered columns.
WINDOW_DENSITY = f"""
SELECT toUInt32(toStartOfInterval(event_time, INTERVAL 15 MINUTE)), count()
FROM viewing_events
WHERE event_time >= {{start:DateTime('UTC')}} AND event_time < {{end:DateTime('UTC')}}{_FILTERS}
GROUP BY 1
ORDER BY 1
SETTINGS max_execution_time = 0"""

# One slice [start, end) of a window: the slices' outputs one after the other are the
# window's events oldest first (a slice boundary is a whole second, so events of one second,
# ordered by id, are never split).
SLICE_EVENTS = f"""
SELECT {_COLUMNS}
FROM viewing_events
WHERE event_time >= {{start:DateTime('UTC')}} AND event_time < {{end:DateTime('UTC')}}{_FILTERS}
ORDER BY event_time, id
{SLICE_SETTINGS}"""

# The slices' rows, as they come, written as one Parquet file (the embedded engine: the slices
# run on one connection, into a pipe this statement reads). Row groups of 100,000 rows, the
# writer holds one before it sends it; no bloom filters: the writer keeps every row group's
# until the end of the file (38 MiB for 10M events, measured), readers rarely use them.
_TYPES = dict(ddl.VIEWING_EVENTS.columns)
_STRUCTURE = ", ".join(f"{name} {_TYPES[name]}" for name in EVENT_COLUMNS)
SLICES_AS_ONE_FILE = f"""
SELECT {_COLUMNS}
FROM {{rows:{_STRUCTURE}}}
SETTINGS
    output_format_parquet_row_group_size = 100000,
    output_format_parquet_write_bloom_filter = 0,
    output_format_parallel_formatting = 0,
    max_threads = 1,
    max_execution_time = 0
"""

# Events a slice holds at most, unless one quarter hour holds more: what the engine sorts at
# once (200,000 events: ~15 MB measured). The table's sort key puts user_id before
# event_time within a day, so each slice reads all of its day's granules: slices of half a
# busy day (333,000 events a day at 10M over 30 days) read the data about twice.
SLICE_ROWS = 200_000


def local_window(*, date_from: date, date_to: date, tz: str) -> tuple[datetime, datetime]:
    """[start, end) in naive UTC of the local dates date_from … date_to in `tz`: from the
    first date's 00:00 to the 00:00 after the last (a midnight a clock change skips maps to
    the first instant after the gap)."""
    zone = ZoneInfo(tz)

    def midnight(day: date) -> datetime:
        local = datetime.combine(day, time(), tzinfo=zone)
        return local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)

    return midnight(date_from), midnight(date_to + timedelta(days=1))


def _utc_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def window_slices(
    *, start: datetime, end: datetime, buckets: list[tuple[datetime, int]], rows: int
) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive slices of at most `rows` events where the buckets
    allow: `buckets` are (bucket start, events from there to the next bucket), ascending;
    a slice ends at a bucket's start. A single bucket over `rows` is a slice of its own."""
    cuts, held = [start], 0
    for moment, count in buckets:
        if held and held + count > rows and start < moment < end:
            cuts.append(moment)
            held = 0
        held += count
    return list(zip(cuts, [*cuts[1:], end], strict=True))


def user_events_export(*, user_id: uuid.UUID, output: str) -> Iterator[bytes]:
    """Every stored event of `user_id` in the format `output` (a key of FORMATS)."""
    return query_stream(USER_EVENTS, params={"user_id": user_id}, output_format=FORMATS[output].engine_format)


def window_events_export(
    *,
    date_from: date,
    date_to: date,
    tz: str,
    output: str,
    user_id: uuid.UUID | None = None,
    movie_id: uuid.UUID | None = None,
    event_type: str | None = None,
) -> Iterator[bytes]:
    """The events of the local dates date_from … date_to in `tz`, optionally filtered.
    CSV and JSON lines come from slices of the window, one query each, so the engine sorts
    one slice at a time (see SLICE_ROWS); Parquet from one query."""
    start, end = local_window(date_from=date_from, date_to=date_to, tz=tz)
    filters = {"user_id": user_id, "movie_id": movie_id, "event_type": event_type}
    fmt = FORMATS[output]
    density = b"".join(query_stream(
        WINDOW_DENSITY, params={"start": _utc_text(start), "end": _utc_text(end), **filters}, output_format="TSV"))
    buckets = [(datetime.fromtimestamp(int(moment), UTC).replace(tzinfo=None), int(count))
               for moment, count in (line.split(b"\t") for line in density.splitlines())]
    statements = [
        # The header once, from the first slice (CSVWithNames writes it for an empty result too).
        (SLICE_EVENTS, {"start": _utc_text(a), "end": _utc_text(b), **filters},
         fmt.engine_format if i == 0 else fmt.continued_format)
        for i, (a, b) in enumerate(window_slices(start=start, end=end, buckets=buckets, rows=SLICE_ROWS))
    ]
    if output == "parquet":
        whole = {"start": _utc_text(start), "end": _utc_text(end), **filters}
        yield from rewritten_stream(statements, final=(SLICES_AS_ONE_FILE, {}, fmt.engine_format),
                                    instead=(WINDOW_EVENTS, whole, fmt.engine_format))
        return
    yield from statements_stream(statements)
