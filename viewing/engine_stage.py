"""Events read, checked and converted by the embedded ClickHouse engine itself: a JSON array
of events in, its rows staged in an in-memory Native file out, or None when the Python rules
must decide. No Python touches each event. Used by the HTTP batch endpoint
(viewing/batch_engine.py), which names its fields and defaults (Fields); staged rows are
stored by viewing/engine_store.py. (The Kafka consumer does not use it yet: docs/kafka.md,
Throughput.)

Why: in Python an event costs ~12-20 µs of CPU (JSON, the event rules, UUIDs, the insert's
encoding), all under one GIL; the engine reads and converts the same events at ~270,000
events/s, with the GIL released.

The engine gives exactly what the rules give, or declines: STAGE converts every item and marks
it `ok` only when its every field is in a form whose conversion here is the one the rules make
(field by field below); a body with any item not `ok`, or not a strict JSON array of objects,
or with an id twice, is declined (None) and goes through the Python path as before, which
decides and words every error. So an invalid event is never stored here, and declining costs
one engine read of the body (~7 µs an event). tests/viewing/test_batch_engine.py sends the
same bodies both ways and compares.

What an item needs to be taken here (else the rules decide):
- valid JSON (simdjson: strict, UTF-8 checked), no key twice, nested at most 40 levels;
- in its metadata no number with an exponent or 19+ digits, and none with a fraction that
  is integral (4.0), below 0.0001 or of more than 15 significant digits (the engine would
  write those back differently from Python);
- `user_id`, `movie_id` and, when present and not null, the id and `session_id`: strings of
  36 (dashed) or 32 hex digits, any case, not 32 decimal digits (which a JSON number reads
  as too); a missing id gets the way in's default;
- the type one of the spellings of viewing.events.EVENT_TYPES (absent: the way in's default);
- `event_time` (else `timestamp`): an ISO-8601 string as producers write it (`Z` or a
  `±HH:MM` offset, up to 6 fraction digits, dropped) or epoch seconds/milliseconds of up to
  15 digits (a number or a string of digits, as the rules read both), inside the accepted
  bounds; both absent or null: the way in's default time;
- `position_seconds`: absent, null or 0 … 4294967295 (a number or a string of digits);
- `metadata`: absent, null, or an object (not a string) with no nested object, no key twice,
  no escaped character, at most 31 `[` and 8 KiB: the engine's compact text of it is then
  Python's.

Only on the embedded engine (a server cannot read this process's files) and with
settings.ENGINE_CHECKS.
"""

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections

from .events import (
    EVENT_TYPES,
    FUTURE_TOLERANCE,
    MAX_METADATA_BYTES,
    MAX_POSITION,
    MILLISECONDS_ABOVE,
)

# Python's json parses far deeper (~1,000 levels); simdjson up to 1,024. Deeper bodies than
# this are left to the rules, so the engine never takes a body Python would find too deep.
MAX_NESTING = 40
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


def _array(values: Sequence[str]) -> str:
    return "[" + ", ".join("'" + v + "'" for v in values) + "]"


_TYPE_SPELLINGS = _array(list(EVENT_TYPES))
_TYPE_NAMES = _array(list(EVENT_TYPES.values()))
# The UUID texts the engine takes (_uuid_text checks them with its parser; a test holds the two equal).
_UUID = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$"
_ISO_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
# A number with a fraction that the engine writes back as Python does (measured on 1,600
# random ones): not integral (Python writes 4.0, the engine 4), at least 0.0001 and below
# 10^15 in size (both write it without an exponent there), and (checked beside it) at most
# 15 significant digits, so its value is the one it reads as.
_FRACTION = r"^-?(0|[1-9][0-9]{0,14})[.][0-9]*[1-9][0-9]*$"
_TINY = r"^-?0[.]0000"
# A JSON string, for emptying the strings of a text before looking at its numbers.
_JSON_STRING = r'"(?:[^"\\\\]|\\\\.)*"'
# The metadata's text with its strings emptied: what is left of digits is its numbers. (Only
# for metadata with a digit before a `.`, `e` or `E`: the regular expression costs ~2 µs.)
_METADATA_NUMBERS = f"replaceRegexpAll(assumeNotNull(raw_metadata), '{_JSON_STRING}', '\"\"')"


@dataclass(frozen=True)
class Fields:
    """How a way in names its fields and fills the missing ones (SQL over the query's
    parameters)."""

    id_field: str  # the event id's key (`id`, Kafka `event_id`)
    type_field: str  # the event type's key (`event_type`, Kafka `action`)
    default_id: str  # the id of an event without one
    default_type: str  # the type spelling of an event without one ('' : required)
    default_time: str  # epoch seconds of an event without a time (NULL: required; `now_seconds`: its receipt)

    @property
    def structure(self) -> str:
        """The fields the engine reads of each item, each as text: a JSON string decoded, a
        number, true/false, an object or an array as written (STAGE's settings); null or absent
        is NULL. Other keys are skipped; a key twice fails the read (and the rules decide)."""
        return ", ".join(f"{name} Nullable(String)" for name in (
            self.id_field, "user_id", "movie_id", "session_id", self.type_field, "event_time", "timestamp",
            "position_seconds", "metadata"))

def _uuid_text(column: str) -> str:
    """Whether a field read as text is a UUID as the rules take it: 36 (dashed) or 32 hex
    digits, any case — the forms the engine's UUID parser takes, nothing else (checked
    against _UUID in tests/viewing/test_batch_engine.py; a regular expression per field cost
    ~0.5 µs an event more). Not 32 decimal digits: that is also how a JSON number of 32 digits
    reads (the rules refuse a number); declining such a string (1 random UUID in ~3 million)
    leaves it to the rules."""
    return f"(isNotNull(toUUIDOrNull({column})) AND isNull(toUInt128OrNull({column})))"


# Every item of the body (a JSON array of objects) as one staged row with its `ok`. A number
# where a string belongs reads as text too: that is harmless (a UUID of 32 digits is
# excluded, _uuid_text), and digits as a string are what the rules accept for a position or
# an epoch time.
#
# Several bodies are staged by one query (its planning, ~18 ms, paid once; a UNION ALL runs
# on both cores): each branch reads one body with its own receipt time and bounds, and `src`,
# the number of the body's staged file descriptor, sends its rows to that file (PARTITION BY).
@functools.lru_cache(maxsize=64)
def stage_sql(fields: "Fields", bodies: int = 1) -> str:
    """STAGE for one way in (its field names and defaults, see Fields) and `bodies` bodies:
    parameters body_K, src_K, now_seconds_K, oldest_us_K and latest_us_K for each K < bodies."""
    branches = "\n        UNION ALL\n        ".join(f"""SELECT %(src_{k})s AS src, %(now_seconds_{k})s AS now_seconds,
            %(oldest_us_{k})s AS oldest_us, %(latest_us_{k})s AS latest_us,
            {fields.id_field} AS raw_id, user_id AS raw_user_id, movie_id AS raw_movie_id,
            session_id AS raw_session_id, {fields.type_field} AS raw_event_type, event_time AS raw_event_time,
            timestamp AS raw_timestamp, position_seconds AS raw_position, metadata AS raw_metadata
        FROM file(%(body_{k})s, 'JSONEachRow', '{fields.structure}')""" for k in range(bodies))
    return f"""
INSERT INTO FUNCTION file('/proc/self/fd/{{_partition_id}}', 'Native') PARTITION BY src
SELECT src, id, user_id, movie_id, session_id, event_type, position_seconds, event_time, metadata,
    {_uuid_text('raw_user_id')} AND {_uuid_text('raw_movie_id')}
    AND (raw_id IS NULL OR {_uuid_text('raw_id')})
    AND (raw_session_id IS NULL OR {_uuid_text('raw_session_id')})
    AND event_type != ''
    AND epoch IS NOT NULL AND epoch * 1000000 BETWEEN oldest_us AND latest_us
    AND position IS NOT NULL
    AND (raw_metadata IS NULL OR (
        startsWith(metadata, '{{') AND countSubstrings(metadata, '{{') = 1
        AND countSubstrings(metadata, '[') < 32 AND length(metadata) <= {MAX_METADATA_BYTES}
        AND position(metadata, '\\\\') = 0 AND isValidUTF8(metadata)
        AND length(JSONExtractKeys(metadata)) = length(arrayDistinct(JSONExtractKeys(metadata)))
        -- its numbers (strings emptied) as the engine writes them back: no exponent or 19+
        -- digits, and fractions only in the form Python writes them too (_FRACTION)
        AND (NOT match(assumeNotNull(raw_metadata), '[0-9][.eE]|[0-9]{{19}}')
             OR (NOT match({_METADATA_NUMBERS}, '[0-9][eE]|[0-9]{{19}}')
                 AND arrayAll(number -> match(number, '{_FRACTION}') AND NOT match(number, '{_TINY}')
                                        AND length(replaceRegexpAll(number, '^-?0*[.]?0*|[.]', '')) <= 15,
                              extractAll({_METADATA_NUMBERS}, '-?[0-9]+[.][0-9]+'))))))
    AS ok
FROM (
    SELECT
        src, oldest_us, latest_us, raw_id, raw_user_id, raw_movie_id, raw_session_id, raw_metadata,
        if(raw_id IS NULL, {fields.default_id}, toUUIDOrZero(assumeNotNull(raw_id))) AS id,
        toUUIDOrZero(assumeNotNull(raw_user_id)) AS user_id,
        toUUIDOrZero(assumeNotNull(raw_movie_id)) AS movie_id,
        toUUIDOrNull(raw_session_id) AS session_id,
        transform(coalesce(raw_event_type, {fields.default_type}), {_TYPE_SPELLINGS}, {_TYPE_NAMES}, '') AS event_type,
        coalesce(raw_event_time, raw_timestamp) AS time_text,
        multiIf(
            time_text IS NULL, {fields.default_time},
            match(time_text, '{_ISO_TIME}'),
                toInt64(parseDateTimeOrNull(substring(time_text, 1, 19), '%%Y-%%m-%%dT%%H:%%i:%%s', 'UTC'))
                - offset_seconds,
            match(time_text, '^[0-9]{{1,15}}$'),
                if(toInt64OrZero(time_text) > {MILLISECONDS_ABOVE}, intDiv(toInt64OrZero(time_text), 1000),
                   toInt64OrZero(time_text)),
            NULL) AS epoch,
        -- The offset of an ISO time ('Z' or '+HH:MM' at its end); NULL when out of range.
        toInt32OrZero(substring(time_text, -5, 2)) AS offset_hours,
        toInt32OrZero(substring(time_text, -2, 2)) AS offset_minutes,
        multiIf(
            endsWith(time_text, 'Z'), 0,
            offset_hours > 23 OR offset_minutes > 59, NULL,
            if(substring(time_text, -6, 1) = '-', -1, 1) * (offset_hours * 3600 + offset_minutes * 60)
        ) AS offset_seconds,
        toDateTime(assumeNotNull(epoch), 'UTC') AS event_time,
        multiIf(
            raw_position IS NULL, 0,
            match(raw_position, '^[0-9]{{1,10}}$') AND toUInt64OrZero(raw_position) <= {MAX_POSITION},
                toUInt64OrZero(raw_position),
            NULL) AS position,
        toUInt32(assumeNotNull(position)) AS position_seconds,
        if(raw_metadata IS NULL, '{{}}', JSONExtractRaw(assumeNotNull(raw_metadata))) AS metadata
    FROM (
        {branches}
    )
)
SETTINGS engine_file_truncate_on_insert = 1, input_format_skip_unknown_fields = 1,
    input_format_json_read_numbers_as_strings = 1, input_format_json_read_bools_as_strings = 1,
    input_format_json_read_objects_as_strings = 1, input_format_json_read_arrays_as_strings = 1,
    -- a rewrite that adds the comparisons an AND chain implies, for filters; here it only
    -- costs (~3-5 ms of planning a body)
    optimize_and_compare_chain = 0
"""

# Each body as a whole (K: its place among the bodies staged together): its items when it is
# a JSON array (strict: simdjson, UTF-8 checked; else -1) with none of what STAGE cannot tell
# from its text: metadata given as a string, a key with an escape. (JSONArrayLength parses
# the body once and is NULL for anything but a valid array, as isValidJSON and JSONType
# together were; the escape is looked for only in a body with a backslash, as a search of
# its own: an alternative in one expression made the engine scan the whole body with it.)
@functools.lru_cache(maxsize=64)
def body_checks_sql(bodies: int) -> str:
    branches = "\n    UNION ALL\n    ".join(
        f"SELECT {k} AS k, raw_blob FROM file(%(body_{k})s, 'RawBLOB')" for k in range(bodies))
    return rf"""
SELECT k, if(match(raw_blob, '"metadata"\\s*:\\s*"')
             OR (position(raw_blob, '\\') > 0 AND match(raw_blob, '\\\\[^"]*"\\s*:')),
             toInt64(-1), ifNull(toInt64(JSONArrayLength(raw_blob)), toInt64(-1)))
FROM (
    {branches}
)
"""


# Of each staged file (K as above; an empty one cannot be read): its rows, how many are `ok`,
# distinct ids.
@functools.lru_cache(maxsize=256)
def staged_counts_sql(ks: tuple[int, ...]) -> str:
    branches = "\n    UNION ALL\n    ".join(
        f"SELECT {k} AS k, id, ok FROM file(%(staged_{k})s, 'Native')" for k in ks)
    return f"""
SELECT k, count(), countIf(ok), uniqExact(id)
FROM (
    {branches}
)
GROUP BY k
"""


class Memfd:
    """An anonymous in-memory file the engine reads and writes by path (/proc/self/fd/N)."""

    def __init__(self, data: bytes = b"") -> None:
        self.fd = os.memfd_create("batch", os.MFD_CLOEXEC)
        self.path = f"/proc/self/fd/{self.fd}"
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class StagedBatch:
    """Events checked and converted by the engine: their rows in an in-memory Native file.
    `len()` is their number; close() frees the file (whoever holds it, once stored or dropped)."""

    def __init__(self, staged: Memfd, count: int) -> None:
        self.file, self.count = staged, count

    def __len__(self) -> int:
        return self.count

    @property
    def path(self) -> str:
        return self.file.path

    def close(self) -> None:
        self.file.close()


def _nested_at_most(body: bytes, limit: int) -> bool:
    """Whether no bracket of `body` is nested more than `limit` deep (about: a pass takes
    away the innermost `[]` and `{}` pairs, sometimes two levels). Brackets inside strings
    count too, so a body with unpaired ones in a string is declined, never wrongly taken."""
    brackets = body.translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return True
        brackets = brackets.replace(b"[]", b"").replace(b"{}", b"")
    return not brackets


def engine_checks_enabled() -> bool:
    """Whether events may be checked by the engine here (embedded, ENGINE_CHECKS, memfd)."""
    return bool(settings.CLICKHOUSE_EMBEDDED and settings.ENGINE_CHECKS and hasattr(os, "memfd_create"))


def bounds_params(now: datetime, retention_days: int) -> dict[str, int]:
    """STAGE's parameters for the accepted event times, [now - retention, now + 5 minutes]."""
    now_utc = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    now_us = (now_utc - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return {
        "now_seconds": now_us // 1_000_000,
        "oldest_us": now_us - retention_days * 86_400_000_000,
        "latest_us": now_us + FUTURE_TOLERANCE // timedelta(microseconds=1),
    }


def may_stage(body: bytes) -> bool:
    """Whether `body` may be staged at all: a JSON array (by its first character), nested at
    most MAX_NESTING deep, with the engine's checks enabled here."""
    return body.lstrip(b" \t\r\n")[:1] == b"[" and engine_checks_enabled() and _nested_at_most(body, MAX_NESTING)


def stage_bodies(bodies: "Sequence[tuple[bytes, dict[str, Any]]]", *, sql_for: "Callable[[int], str]",
                 expected: int | None = None, max_items: int | None = None,
                 using: str = "clickhouse") -> list[StagedBatch | None]:
    """Each body's events (a JSON array) staged, or None where the rules must decide; all in
    one query when it can read them all, else each alone. `bodies`: (body, its parameters:
    bounds_params and any the way in's SQL names), each one may_stage took (checked by the
    caller, in its own thread: the check reads the whole body); `sql_for(n)`: stage_sql of the
    way in for n bodies. `expected`: the number of items each must have; `max_items`: the most
    it may have."""
    results: list[StagedBatch | None] = [None] * len(bodies)
    if not bodies:
        return results
    sources = [Memfd(body) for body, _ in bodies]
    staged: list[Memfd | None] = [Memfd() for _ in bodies]
    try:
        params: dict[str, Any] = {}
        for k, (_, body_params) in enumerate(bodies):
            params.update({f"{name}_{k}": value for name, value in body_params.items()})
            params.update({f"body_{k}": sources[k].path, f"src_{k}": staged[k].fd, f"staged_{k}": staged[k].path})
        with connections[using].cursor() as cursor:
            try:
                cursor.execute(sql_for(len(bodies)), params)
            except DatabaseError:
                # One body the engine cannot read fails them all: each alone, to find which.
                if len(bodies) == 1:
                    return results
                return [stage_bodies([entry], sql_for=sql_for, expected=expected, max_items=max_items,
                                     using=using)[0] for entry in bodies]
            # An empty array stages nothing: its file is empty, and declined.
            read = tuple(k for k in range(len(bodies)) if os.fstat(staged[k].fd).st_size)
            if not read:
                return results
            try:
                cursor.execute(body_checks_sql(len(bodies)), params)
                body_items = dict(cursor.fetchall())
                cursor.execute(staged_counts_sql(read), params)
                counts = {k: rest for k, *rest in cursor.fetchall()}
            except DatabaseError:
                return results  # (the engine refusing now, e.g. its memory limit): the rules decide
        for k in read:
            items, ok, ids = counts.get(k, (0, 0, 0))
            if items >= 1 and ok == items == ids == body_items[k] and expected in (None, items) \
                    and (max_items is None or items <= max_items):
                results[k], staged[k] = StagedBatch(staged[k], items), None
        return results
    finally:
        for source in sources:
            source.close()
        for file in staged:
            if file is not None:
                file.close()
