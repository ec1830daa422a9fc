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
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from analytics_site.chdb_backend.streaming import query_stream

from .queries import EVENT_COLUMNS


@dataclass(frozen=True)
class ExportFormat:
    engine_format: str
    content_type: str
    extension: str


FORMATS = {
    "csv": ExportFormat("CSVWithNames", "text/csv; charset=utf-8", "csv"),
    "ndjson": ExportFormat("JSONEachRow", "application/x-ndjson", "ndjson"),
    "parquet": ExportFormat("Parquet", "application/vnd.apache.parquet", "parquet"),
}

_COLUMNS = ", ".join(EVENT_COLUMNS)
# Constant settings of every export (no input in them).
EXPORT_SETTINGS = """
SETTINGS
    date_time_output_format = 'iso',
    format_csv_null_representation = '',
    output_format_csv_crlf_end_of_line = 1,
    output_format_parquet_row_group_size = 100000,
    max_bytes_before_external_sort = 100000000,
    read_in_order_use_buffering = 0,
    max_block_size = 8192,
    max_execution_time = 0
"""
# Why these: ISO times with Z, as the API writes them; an empty CSV field for a missing
# session (RFC 4180 readers know no \N) and CRLF line ends (RFC 4180); Parquet row groups
# of 100,000 rows, since the writer holds one group before it sends it; a sort that needs
# more than 100 MB spills to disk instead of growing the process; reading the days in order
# without buffering ahead and in blocks of 8,192 rows (measured on 1M events: the query needs
# 29 MB instead of 86 MB; with 333,000 events a day, as 10M over 30 days, 53 MB: one day's
# sort, whatever the length of the window); no time limit (a 10M-event export takes longer
# than CLICKHOUSE_QUERY_TIMEOUT, and a client that leaves cancels it).

# One viewer's events: the bloom filter on user_id skips the granules without them.
USER_EVENTS = f"""
SELECT {_COLUMNS}
FROM viewing_events
WHERE user_id = {{user_id:UUID}}
ORDER BY event_time, id
{EXPORT_SETTINGS}"""

# A window's events, optionally of one user, one movie, one type (a NULL parameter is no
# filter). ORDER BY starts with the table's first sort key, toDate(event_time), so the engine
# reads the days in order and sorts one day at a time instead of the whole window.
WINDOW_EVENTS = f"""
SELECT {_COLUMNS}
FROM viewing_events
WHERE event_time >= {{start:DateTime('UTC')}} AND event_time < {{end:DateTime('UTC')}}
    AND ({{user_id:Nullable(UUID)}} IS NULL OR user_id = {{user_id:Nullable(UUID)}})
    AND ({{movie_id:Nullable(UUID)}} IS NULL OR movie_id = {{movie_id:Nullable(UUID)}})
    AND ({{event_type:Nullable(String)}} IS NULL OR event_type = {{event_type:Nullable(String)}})
ORDER BY toDate(event_time), event_time, id
{EXPORT_SETTINGS}"""


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
    """The events of the local dates date_from … date_to in `tz`, optionally filtered."""
    start, end = local_window(date_from=date_from, date_to=date_to, tz=tz)
    params = {
        "start": _utc_text(start),
        "end": _utc_text(end),
        "user_id": user_id,
        "movie_id": movie_id,
        "event_type": event_type,
    }
    return query_stream(WINDOW_EVENTS, params=params, output_format=FORMATS[output].engine_format)
