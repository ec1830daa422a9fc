"""The batch endpoint's engine path: a body in the common shape read, checked and converted by
the embedded ClickHouse engine itself, and stored by INSERT ... SELECT, with no Python touching
each event.

Why: in Python, a 10,000-event batch costs ~17-21 µs of CPU an event (JSON, the event rules,
UUIDs, the insert's encoding), all under one GIL; the engine parses and converts the same body
at ~270,000 events/s on its own threads, with the GIL released.

The engine path gives exactly what the rules give, or declines: `stage_batch` converts every
item and marks it `ok` only when its every field is in a form whose conversion here is the
one the rules make (STAGE, field by field below); a body with any item not `ok`, or not a JSON
array of 1 to 10,000 objects, or with an id twice, is declined (None) and goes through the
Python path as before, which decides and words every error. So an invalid batch is never
stored here, and a valid one declined costs one engine read of its body (~4 µs an event).
tests/viewing/test_batch_engine.py sends the same bodies both ways and compares answers and
stored rows.

What an item needs to be taken here (else the rules decide):
- valid JSON (simdjson: strict, UTF-8 checked), no key twice, at most 40 `{`/`[` in all;
- no number with a fraction, an exponent or 19+ digits anywhere in it (the engine would write
  such a metadata value back differently from Python);
- `user_id`, `movie_id` and, when present and not null, `id` and `session_id`: strings of 36
  (dashed) or 32 hex digits, any case; a missing id gets a random one, as in the rules;
- `event_type` one of the spellings of viewing.events.EVENT_TYPES;
- `event_time` (else `timestamp`): an ISO-8601 string as producers write it (`Z` or a
  `±HH:MM` offset, up to 6 fraction digits, dropped) or epoch seconds/milliseconds as an
  integer of up to 15 digits, inside the accepted bounds; both absent or null: the receipt
  second;
- `position_seconds`: absent, null or an integer 0 … 4294967295;
- `metadata`: absent, null, or an object with no nested object, no key twice, no escaped
  character, at most 31 `[` and 8 KiB: the engine's compact text of it is then Python's.

Only on the embedded engine (a server cannot read this process's files) and with
settings.ENGINE_BATCH_CHECKS. Storing: `staged_store` stores the staged batches of a group
commit (viewing/batch_commit.py) in one insert, under services' store lock, with the same
de-duplication by id, suppression list, insert token and completion of unfinished inserts as
services.events_store (docs/architecture.md, The batch endpoint's engine path).
"""

import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connections

from analytics_site import metrics

from . import services
from .events import (
    EVENT_TYPES,
    FUTURE_TOLERANCE,
    MAX_METADATA_BYTES,
    MAX_POSITION,
    MILLISECONDS_ABOVE,
)

MAX_ITEMS = 10_000
# Python's json parses far deeper (~1,000 levels); simdjson up to 1,024. Deeper bodies than
# this are left to the rules, so the engine never takes a body Python would find too deep.
MAX_NESTING = 40
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


def _array(values: Sequence[str]) -> str:
    return "[" + ", ".join("'" + v + "'" for v in values) + "]"


_TYPE_SPELLINGS = _array(list(EVENT_TYPES))
_TYPE_NAMES = _array(list(EVENT_TYPES.values()))
_UUID = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})$"
_ISO_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
# A JSON string, for emptying the strings of a text before looking at its numbers.
_JSON_STRING = r'"(?:[^"\\\\]|\\\\.)*"'

# The fields the engine reads of each item, each as text: a JSON string decoded, a number,
# true/false, an object or an array as written (the settings below); null or absent is NULL.
# Other keys are skipped; a key twice fails the read (and the rules decide).
_FIELDS = ", ".join(f"{name} Nullable(String)" for name in (
    "id", "user_id", "movie_id", "session_id", "event_type", "event_time", "timestamp", "position_seconds",
    "metadata"))

# Every item of the body (a JSON array of objects) as one staged row with its `ok`. A number
# where a string belongs reads as text too: that is harmless (a UUID of 32 digits is
# excluded by the body's check, STAGED_SUMMARY), and digits as a string are what the rules
# accept for a position or an epoch time.
STAGE = f"""
INSERT INTO FUNCTION file(%(staged)s, 'Native')
SELECT id, user_id, movie_id, session_id, event_type, position_seconds, event_time, metadata,
    match(assumeNotNull(raw_user_id), '{_UUID}') AND match(assumeNotNull(raw_movie_id), '{_UUID}')
    AND (raw_id IS NULL OR match(assumeNotNull(raw_id), '{_UUID}'))
    AND (raw_session_id IS NULL OR match(assumeNotNull(raw_session_id), '{_UUID}'))
    AND event_type != ''
    AND epoch IS NOT NULL AND epoch * 1000000 BETWEEN %(oldest_us)s AND %(latest_us)s
    AND position IS NOT NULL
    AND (raw_metadata IS NULL OR (
        startsWith(metadata, '{{') AND countSubstrings(metadata, '{{') = 1
        AND countSubstrings(metadata, '[') < 32 AND length(metadata) <= {MAX_METADATA_BYTES}
        AND position(metadata, '\\\\') = 0 AND isValidUTF8(metadata)
        AND length(JSONExtractKeys(metadata)) = length(arrayDistinct(JSONExtractKeys(metadata)))
        -- no number with a fraction, an exponent or 19+ digits (written back otherwise)
        AND (NOT match(assumeNotNull(raw_metadata), '[0-9][.eE]|[0-9]{{19}}')
             OR NOT match(replaceRegexpAll(assumeNotNull(raw_metadata), '{_JSON_STRING}', '""'), '[0-9][.eE]|[0-9]{{19}}'))))
    AS ok
FROM (
    SELECT
        raw_id, raw_user_id, raw_movie_id, raw_session_id, raw_metadata,
        if(raw_id IS NULL, generateUUIDv4(), toUUIDOrZero(assumeNotNull(raw_id))) AS id,
        toUUIDOrZero(assumeNotNull(raw_user_id)) AS user_id,
        toUUIDOrZero(assumeNotNull(raw_movie_id)) AS movie_id,
        toUUIDOrNull(raw_session_id) AS session_id,
        transform(assumeNotNull(raw_event_type), {_TYPE_SPELLINGS}, {_TYPE_NAMES}, '') AS event_type,
        coalesce(raw_event_time, raw_timestamp) AS time_text,
        multiIf(
            time_text IS NULL, %(receipt)s,
            match(time_text, '{_ISO_TIME}'),
                toInt64(parseDateTimeOrNull(substring(time_text, 1, 19), '%%Y-%%m-%%dT%%H:%%i:%%s', 'UTC'))
                - offset_seconds,
            match(time_text, '^[0-9]{{1,15}}$'),
                if(toInt64OrZero(time_text) > {MILLISECONDS_ABOVE}, intDiv(toInt64OrZero(time_text), 1000),
                   toInt64OrZero(time_text)),
            NULL) AS epoch,
        -- The offset of an ISO time ('Z' or '+HH:MM' at its end); NULL when out of range.
        multiIf(
            endsWith(time_text, 'Z'), 0,
            toInt32OrZero(substring(time_text, -5, 2)) > 23 OR toInt32OrZero(substring(time_text, -2, 2)) > 59, NULL,
            if(substring(time_text, -6, 1) = '-', -1, 1)
                * (toInt32OrZero(substring(time_text, -5, 2)) * 3600 + toInt32OrZero(substring(time_text, -2, 2)) * 60)
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
        SELECT id AS raw_id, user_id AS raw_user_id, movie_id AS raw_movie_id, session_id AS raw_session_id,
            event_type AS raw_event_type, event_time AS raw_event_time, timestamp AS raw_timestamp,
            position_seconds AS raw_position, metadata AS raw_metadata
        FROM file(%(body)s, 'JSONEachRow', '{_FIELDS}')
    )
)
SETTINGS engine_file_truncate_on_insert = 1, input_format_skip_unknown_fields = 1,
    input_format_json_read_numbers_as_strings = 1, input_format_json_read_bools_as_strings = 1,
    input_format_json_read_objects_as_strings = 1, input_format_json_read_arrays_as_strings = 1,
    input_format_parallel_parsing = 0
"""

# Whether a staged body is one to store here: its items, how many are `ok`, distinct ids, and
# the body as a whole: its items when it is a JSON array (strict: simdjson, UTF-8 checked;
# else -1), and whether it has none of what STAGE cannot tell from its text: a run of 19
# digits (a number where a UUID belongs), metadata given as a string, a key with an escape.
STAGED_SUMMARY = r"""
SELECT
    count(),
    countIf(ok),
    uniqExact(id),
    (SELECT if(isValidJSON(raw_blob) AND JSONType(raw_blob) = 'Array'
               AND NOT match(raw_blob, '[0-9]{19}|"metadata"\\s*:\\s*"|\\\\[^"]*"\\s*:'),
               toInt64(JSONLength(raw_blob)), toInt64(-1))
     FROM file(%(body)s, 'RawBLOB'))
FROM file(%(staged)s, 'Native')
"""


class _Memfd:
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
    """A batch checked and converted by the engine: its rows in an in-memory Native file.
    `len()` is its number of events; close() frees the file (the request does, once stored)."""

    def __init__(self, staged: _Memfd, count: int) -> None:
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


def engine_path_enabled() -> bool:
    return bool(settings.CLICKHOUSE_EMBEDDED and settings.ENGINE_BATCH_CHECKS and hasattr(os, "memfd_create"))


def stage_batch(body: bytes, *, now: datetime, retention_days: int, using: str = "clickhouse") -> StagedBatch | None:
    """The body's events checked and converted by the engine, or None when the rules must
    decide (see the module's docstring). `now`: the time of receipt, the bounds' reference."""
    head = body.lstrip(b" \t\r\n")[:1]
    if head != b"[" or not engine_path_enabled() or not _nested_at_most(body, MAX_NESTING):
        return None
    now_utc = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    now_us = (now_utc - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    source, staged = _Memfd(body), _Memfd()
    try:
        params = {
            "body": source.path,
            "staged": staged.path,
            "receipt": now_us // 1_000_000,
            "oldest_us": now_us - retention_days * 86_400_000_000,
            "latest_us": now_us + FUTURE_TOLERANCE // timedelta(microseconds=1),
        }
        with connections[using].cursor() as cursor:
            try:
                cursor.execute(STAGE, params)
                cursor.execute(STAGED_SUMMARY, params)  # (fails on an empty array: nothing staged)
            except DatabaseError:
                return None  # not an array of objects the engine reads: the rules word why
            ((items, ok, ids, body_items),) = cursor.fetchall()
        if not (1 <= items <= MAX_ITEMS and ok == items == ids == body_items):
            return None
        batch, staged = StagedBatch(staged, items), None
        return batch
    finally:
        source.close()
        if staged is not None:
            staged.close()


# --- Storing a group of staged batches (under services' store lock) ----------------------

def _first_of_each_id(batches: Sequence[StagedBatch]) -> str:
    """The group's staged rows, the first of each id only (the earliest batch's: ids are
    distinct within one), as events_store keeps the first of repeated ids. Paths are ours."""
    if len(batches) == 1:
        return f"SELECT * FROM file('{batches[0].path}', 'Native')"
    union = "\n        UNION ALL\n        ".join(
        f"SELECT *, {i} AS batch FROM file('{b.path}', 'Native')" for i, b in enumerate(batches))
    return f"""
    SELECT * FROM (
        {union}
    )
    ORDER BY id, batch
    LIMIT 1 BY id"""


# The rows to insert, sorted by id (the insert token's order): not stored already and (when
# the suppression list is not empty) not of a suppressed viewer. Written to a file of their
# own, so the insert, the token and a retry after a failure all see the same rows.
NEW_ROWS = """
INSERT INTO FUNCTION file(%(new)s, 'Native')
SELECT id, user_id, movie_id, event_type, position_seconds, event_time, session_id, metadata
FROM ({first})
WHERE {unsuppressed} id NOT IN (SELECT id FROM event_ids WHERE id IN (SELECT id FROM ({first})))
ORDER BY id
SETTINGS engine_file_truncate_on_insert = 1
"""
NEW_STRUCTURE = ("id UUID, user_id UUID, movie_id UUID, event_type String, position_seconds UInt32, "
                 "event_time DateTime(''UTC''), session_id Nullable(UUID), metadata String")
UNSUPPRESSED = "user_id NOT IN (SELECT user_id FROM suppressed_users) AND"
SUPPRESSED_COUNT = "SELECT count() FROM suppressed_users"
SUPPRESSED_AMONG = "SELECT countIf(user_id IN (SELECT user_id FROM suppressed_users)) FROM ({first})"

# Of the group's rows (first of each id): how many are stored already, how many there are and
# their ids as services._batch_token reads them (32 hex digits, sorted, joined). When none is
# stored (nor suppressed), those rows are the insert, straight from the staged files.
GROUP_SUMMARY = """
SELECT
    countIf(id IN (SELECT id FROM event_ids WHERE id IN (SELECT id FROM ({rows})))),
    count(),
    arrayStringConcat(arraySort(groupArray(replaceAll(toString(id), '-', ''))))
FROM ({rows})
"""

INSERT_ROWS = """
INSERT INTO viewing_events (id, user_id, movie_id, event_type, position_seconds, event_time, session_id,
    metadata, created_at)
SELECT id, user_id, movie_id, event_type, position_seconds, event_time, session_id, metadata,
    toDateTime(%(created_at)s, 'UTC')
FROM ({rows})
ORDER BY id
"""

# The inserted rows as services' insert tuples (queries.EVENT_COLUMNS, times as epoch
# seconds): what an unfinished insert keeps to be sent again.
ROWS_AS_TUPLES = """
SELECT id, user_id, movie_id, event_type, position_seconds, toUnixTimestamp(event_time), session_id,
    metadata, %(created_at)s
FROM ({rows})
ORDER BY id
"""


def staged_store(batches: Sequence[StagedBatch], *, path: str = "http", using: str = "clickhouse",
                 insert_settings: dict | None = None) -> int:
    """Store the events of `batches` in one INSERT, as services.events_store stores rows:
    every id once (the first), none already stored, none of a suppressed viewer; on error
    nothing is acknowledged and a half-written insert is completed before the next. Returns
    the number of events newly stored."""
    rows = _first_of_each_id(batches)
    total, suppressed = sum(map(len, batches)), 0
    new = _Memfd()
    params = {"new": new.path, "created_at": int(time.time())}
    started = time.perf_counter()
    try:
        with services.store_lock, connections[using].cursor() as cursor:
            if services.unfinished_inserts():
                cursor.execute(f"SELECT id FROM ({rows})")
                services.complete_unfinished(cursor, using=using, wanted={row[0] for row in cursor.fetchall()})
            cursor.execute(SUPPRESSED_COUNT)
            if cursor.fetchall()[0][0]:
                cursor.execute(SUPPRESSED_AMONG.format(first=rows))
                suppressed = cursor.fetchall()[0][0]
            cursor.execute(GROUP_SUMMARY.format(rows=rows))
            ((stored, count, id_texts),) = cursor.fetchall()
            if stored or suppressed:  # the rows to insert are fewer: written apart first
                cursor.execute(NEW_ROWS.format(first=rows, unsuppressed=UNSUPPRESSED if suppressed else ""), params)
                rows = f"SELECT * FROM file(%(new)s, 'Native', '{NEW_STRUCTURE}')"  # (may be empty)
                cursor.execute(GROUP_SUMMARY.format(rows=rows), params)
                ((_, count, id_texts),) = cursor.fetchall()
            if count:
                token = services.ids_token(id_texts)
                settings_now = {**settings.CLICKHOUSE_INSERT_SETTINGS, **(insert_settings or {}),
                                **services.DEDUPLICATION, "insert_deduplication_token": token}
                try:
                    services.run_with_settings(cursor, INSERT_ROWS.format(rows=rows), params, settings_now)
                except DatabaseError:
                    cursor.execute(ROWS_AS_TUPLES.format(rows=rows), params)
                    services.remember_unfinished(cursor, cursor.fetchall(), token, path=path, using=using)
                    raise
    finally:
        new.close()
    metrics.INSERT_SECONDS.labels(path).observe(time.perf_counter() - started)
    metrics.INSERT_ROWS.labels(path).observe(total)
    metrics.EVENTS_INGESTED.labels(path).inc(count)
    metrics.EVENTS_DUPLICATE.labels(path).inc(total - count - suppressed)
    if suppressed:
        metrics.EVENTS_SUPPRESSED.labels(path).inc(suppressed)
    return count
