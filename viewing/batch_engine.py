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


def _array(values: Sequence[str]) -> str:
    return "[" + ", ".join("'" + v + "'" for v in values) + "]"


# Spellings as the engine writes a JSON string back: quoted, no escapes.
_TYPE_SPELLINGS = _array([f'"{spelling}"' for spelling in EVENT_TYPES])
_TYPE_NAMES = _array(list(EVENT_TYPES.values()))
_UUID_RAW = r'^"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})"$'
_TIME_RAW = r'^"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"$'
_ABSENT = "('', 'null')"


def _unquoted(field: str) -> str:
    """A JSON string field's text between its quotes (for one that matched a pattern without escapes)."""
    return f"substring(f['{field}'], 2, length(f['{field}']) - 2)"  # a missing key reads as '', a JSON null as 'null'

# Every item of the body (a JSON array of objects) as one staged row. `f`: the item's fields,
# each as the engine writes its JSON value back (strings quoted, objects compact). The
# *_raw columns are only read by the outer SELECT.
STAGE = f"""
INSERT INTO FUNCTION file(%(staged)s, 'Native')
SELECT id, user_id, movie_id, session_id, event_type, position_seconds, event_time, metadata,
    fields_ok
    AND match(f['user_id'], '{_UUID_RAW}') AND match(f['movie_id'], '{_UUID_RAW}')
    AND (f['id'] IN {_ABSENT} OR match(f['id'], '{_UUID_RAW}'))
    AND (f['session_id'] IN {_ABSENT} OR match(f['session_id'], '{_UUID_RAW}'))
    AND event_type != ''
    AND epoch IS NOT NULL AND epoch * 1000000 BETWEEN %(oldest_us)s AND %(latest_us)s
    AND position IS NOT NULL
    AND (f['metadata'] IN {_ABSENT} OR (
        startsWith(metadata, '{{') AND countSubstrings(metadata, '{{') = 1
        AND countSubstrings(metadata, '[') < 32 AND length(metadata) <= {MAX_METADATA_BYTES}
        AND position(metadata, '\\\\') = 0 AND isValidUTF8(metadata)
        AND length(JSONExtractKeys(metadata)) = length(arrayDistinct(JSONExtractKeys(metadata)))))
    AS ok
FROM (
    SELECT
        f,
        fields_ok,
        if(f['id'] IN {_ABSENT}, generateUUIDv4(), toUUIDOrZero({_unquoted('id')})) AS id,
        toUUIDOrZero({_unquoted('user_id')}) AS user_id,
        toUUIDOrZero({_unquoted('movie_id')}) AS movie_id,
        if(f['session_id'] IN {_ABSENT}, NULL, toUUIDOrNull({_unquoted('session_id')})) AS session_id,
        transform(f['event_type'], {_TYPE_SPELLINGS}, {_TYPE_NAMES}, '') AS event_type,
        if(f['event_time'] IN {_ABSENT}, f['timestamp'], f['event_time']) AS time_raw,
        multiIf(
            time_raw IN {_ABSENT}, %(receipt)s,
            match(time_raw, '{_TIME_RAW}'),
                toInt64(parseDateTimeOrNull(substring(time_raw, 2, 19), '%%Y-%%m-%%dT%%H:%%i:%%s', 'UTC'))
                - offset_seconds,
            match(time_raw, '^[0-9]{{1,15}}$'),
                if(toInt64OrZero(time_raw) > {MILLISECONDS_ABOVE}, intDiv(toInt64OrZero(time_raw), 1000), toInt64OrZero(time_raw)),
            NULL) AS epoch,
        -- The offset of an ISO time ('Z"' or '+HH:MM"' at its end); NULL when out of range.
        multiIf(
            endsWith(time_raw, 'Z"'), 0,
            toInt32OrZero(substring(time_raw, -6, 2)) > 23 OR toInt32OrZero(substring(time_raw, -3, 2)) > 59, NULL,
            if(substring(time_raw, -7, 1) = '-', -1, 1)
                * (toInt32OrZero(substring(time_raw, -6, 2)) * 3600 + toInt32OrZero(substring(time_raw, -3, 2)) * 60)
        ) AS offset_seconds,
        toDateTime(assumeNotNull(epoch), 'UTC') AS event_time,
        multiIf(
            f['position_seconds'] IN {_ABSENT}, 0,
            match(f['position_seconds'], '^[0-9]{{1,10}}$') AND toUInt64OrZero(f['position_seconds']) <= {MAX_POSITION},
                toUInt64OrZero(f['position_seconds']),
            NULL) AS position,
        toUInt32(assumeNotNull(position)) AS position_seconds,
        if(f['metadata'] IN {_ABSENT}, '{{}}', f['metadata']) AS metadata
    FROM (
        SELECT
            JSONExtractKeysAndValuesRaw(item) AS pairs,
            mapFromArrays(arrayMap(p -> p.1, pairs), arrayMap(p -> p.2, pairs)) AS f,
            isValidJSON(item)
            AND length(arrayDistinct(mapKeys(f))) = length(pairs)
            AND countSubstrings(item, '{{') + countSubstrings(item, '[') <= 40
            -- strings emptied, no number may have a fraction, an exponent or 19+ digits
            AND NOT match(replaceRegexpAll(item, '"(?:[^"\\\\\\\\]|\\\\\\\\.)*"', '""'), '[0-9][.eE]|[0-9]{{19}}')
            AS fields_ok
        FROM file(%(body)s, 'JSONAsString', 'item String')
    )
)
SETTINGS engine_file_truncate_on_insert = 1
"""

# Whether a staged body is one to store here: its items, how many are `ok`, distinct ids,
# and the body as a whole (-1 unless it is a JSON array).
STAGED_SUMMARY = """
SELECT
    count(),
    countIf(ok),
    uniqExact(id),
    (SELECT if(isValidJSON(raw_blob) AND JSONType(raw_blob) = 'Array', toInt64(JSONLength(raw_blob)), toInt64(-1))
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


def engine_path_enabled() -> bool:
    return bool(settings.CLICKHOUSE_EMBEDDED and settings.ENGINE_BATCH_CHECKS and hasattr(os, "memfd_create"))


def stage_batch(body: bytes, *, now: datetime, retention_days: int, using: str = "clickhouse") -> StagedBatch | None:
    """The body's events checked and converted by the engine, or None when the rules must
    decide (see the module's docstring). `now`: the time of receipt, the bounds' reference."""
    head = body.lstrip(b" \t\r\n")[:1]
    if head != b"[" or not engine_path_enabled():
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

def _staged_union(batches: Sequence[StagedBatch]) -> str:
    """The group's staged rows, each with its batch's place in the group (paths are ours)."""
    return "\n    UNION ALL\n    ".join(
        f"SELECT *, {i} AS batch FROM file('{b.path}', 'Native')" for i, b in enumerate(batches))


# The first row of each id in the group (the earliest batch: ids are distinct within one),
# as events_store keeps the first of repeated ids before anything else.
_FIRST_OF_EACH_ID = """
SELECT * FROM (
    {staged}
)
ORDER BY id, batch
LIMIT 1 BY id
"""

# The rows to insert, sorted by id (the insert token's order): not of a suppressed viewer,
# not stored already. Written to a file of their own, so the insert, the token and a retry
# after a failure all see the same rows.
NEW_ROWS = """
INSERT INTO FUNCTION file(%(new)s, 'Native')
SELECT id, user_id, movie_id, event_type, position_seconds, event_time, session_id, metadata
FROM ({first})
WHERE user_id NOT IN (SELECT user_id FROM suppressed_users)
    AND id NOT IN (SELECT id FROM event_ids WHERE id IN (SELECT id FROM ({first})))
ORDER BY id
SETTINGS engine_file_truncate_on_insert = 1
"""

# How many events the group holds, how many are of suppressed viewers, and the new rows' ids
# as services._batch_token reads them (32 hex digits, sorted, joined).
NEW_SUMMARY = """
SELECT
    (SELECT count() FROM ({staged})),
    (SELECT countIf(user_id IN (SELECT user_id FROM suppressed_users)) FROM ({first})),
    count(),
    arrayStringConcat(arraySort(groupArray(replaceAll(toString(id), '-', ''))))
FROM file(%(new)s, 'Native')
"""

INSERT_NEW = """
INSERT INTO viewing_events (id, user_id, movie_id, event_type, position_seconds, event_time, session_id,
    metadata, created_at)
SELECT *, toDateTime(%(created_at)s, 'UTC')
FROM file(%(new)s, 'Native')
"""

# The new rows as services' insert tuples (queries.EVENT_COLUMNS, times as epoch seconds):
# what an unfinished insert keeps to be sent again.
NEW_AS_TUPLES = """
SELECT id, user_id, movie_id, event_type, position_seconds, toUnixTimestamp(event_time), session_id,
    metadata, %(created_at)s
FROM file(%(new)s, 'Native')
ORDER BY id
"""


def staged_store(batches: Sequence[StagedBatch], *, path: str = "http", using: str = "clickhouse",
                 insert_settings: dict | None = None) -> int:
    """Store the events of `batches` in one INSERT, as services.events_store stores rows:
    every id once (the first), none already stored, none of a suppressed viewer; on error
    nothing is acknowledged and a half-written insert is completed before the next. Returns
    the number of events newly stored."""
    staged = _staged_union(batches)
    first = _FIRST_OF_EACH_ID.format(staged=staged)
    created_at = int(time.time())
    new = _Memfd()
    params = {"new": new.path, "created_at": created_at}
    started = time.perf_counter()
    try:
        with services.store_lock, connections[using].cursor() as cursor:
            if services.unfinished_inserts():
                cursor.execute(f"SELECT id FROM ({staged})")
                services.complete_unfinished(cursor, using=using, wanted={row[0] for row in cursor.fetchall()})
            cursor.execute(NEW_ROWS.format(first=first), params)
            cursor.execute(NEW_SUMMARY.format(staged=staged, first=first), params)
            ((total, suppressed, count, id_texts),) = cursor.fetchall()
            if count:
                token = services.ids_token(id_texts)
                settings_now = {**settings.CLICKHOUSE_INSERT_SETTINGS, **(insert_settings or {}),
                                **services.DEDUPLICATION, "insert_deduplication_token": token}
                try:
                    services.run_with_settings(cursor, INSERT_NEW, params, settings_now)
                except DatabaseError:
                    cursor.execute(NEW_AS_TUPLES, params)
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
