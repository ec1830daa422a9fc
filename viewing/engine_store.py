"""Storing events the engine staged (viewing/engine_stage.py): the staged batches of an HTTP
group commit (viewing/batch_commit.py) in one INSERT ... SELECT, under services' store lock,
with the guarantees of services.events_store: every id once (the first), none already stored,
none of a suppressed viewer, the insert token over the sorted ids (the digest events_store
computes), and an insert that fails half-way remembered with its rows and completed before
the next (docs/architecture.md, Acknowledged means stored).
"""

import time
from collections.abc import Sequence

from django.conf import settings
from django.db import DatabaseError, connections

from analytics_site import metrics

from . import services
from .engine_stage import Memfd, StagedBatch


def _all_rows(batches: Sequence[StagedBatch]) -> str:
    """The group's staged rows, every batch's. Paths are ours."""
    return "\n    UNION ALL\n    ".join(f"SELECT * FROM file('{b.path}', 'Native')" for b in batches)


def _first_of_each_id(batches: Sequence[StagedBatch]) -> str:
    """The group's staged rows, the first of each id only (the earliest batch's: ids are
    distinct within one), as events_store keeps the first of repeated ids. Sorting the rows
    costs ~25 ms an insert of 40,000 each time they are read, so it is used only when an id is
    in two of the group's batches (GROUP_SUMMARY's distinct count tells)."""
    union = "\n        UNION ALL\n        ".join(
        f"SELECT *, {i} AS batch FROM file('{b.path}', 'Native')" for i, b in enumerate(batches))
    return f"""
    SELECT * FROM (
        {union}
    )
    ORDER BY id, batch
    LIMIT 1 BY id"""


# The rows to insert when some of the group's are stored already or of a suppressed viewer
# (`unsuppressed` is then the filter, else empty): the others, sorted by id. Written to a file
# of their own, so the insert, the token and a retry after a failure all see the same rows.
NEW_ROWS = """
INSERT INTO FUNCTION file(%(new)s, 'Native')
SELECT id, user_id, movie_id, event_type, position_seconds, event_time, session_id, metadata
FROM ({rows})
WHERE {unsuppressed} id NOT IN (SELECT id FROM event_ids WHERE id IN (SELECT id FROM ({rows})))
ORDER BY id
SETTINGS engine_file_truncate_on_insert = 1
"""
NEW_STRUCTURE = ("id UUID, user_id UUID, movie_id UUID, event_type String, position_seconds UInt32, "
                 "event_time DateTime(''UTC''), session_id Nullable(UUID), metadata String")
UNSUPPRESSED = "user_id NOT IN (SELECT user_id FROM suppressed_users) AND"
SUPPRESSED_COUNT = "SELECT count() FROM suppressed_users"
SUPPRESSED_AMONG = "SELECT countIf(user_id IN (SELECT user_id FROM suppressed_users)) FROM ({rows})"

# Of the group's rows: how many are stored already, how many there are, how many distinct ids
# and the ids as services._batch_token reads them (32 hex digits, sorted, joined). When none is
# stored (nor suppressed) and no id is there twice, those rows are the insert, straight from
# the staged files.
GROUP_SUMMARY = """
SELECT
    countIf(id IN (SELECT id FROM event_ids WHERE id IN (SELECT id FROM ({rows})))),
    count(),
    uniqExact(id),
    arrayStringConcat(arraySort(groupArray(replaceAll(toString(id), '-', ''))))
FROM ({rows})
"""

# In the order the staged files hold them: the engine (chdb-core 26.9) tells a token's parts
# apart by their partition, not by their place in the insert, so the same rows in another
# order (a completion sends them sorted by id) are the same parts (tests/viewing/
# test_batch_engine.py, ..._parts_apart_by_partition). Sorting 40,000 rows here cost ~10 ms
# of CPU of an insert's ~140 (merges stopped, measured in one process).
INSERT_ROWS = """
INSERT INTO viewing_events (id, user_id, movie_id, event_type, position_seconds, event_time, session_id,
    metadata, created_at)
SELECT id, user_id, movie_id, event_type, position_seconds, event_time, session_id, metadata,
    toDateTime(%(created_at)s, 'UTC')
FROM ({rows})
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
    rows = _all_rows(batches)
    total, suppressed = sum(map(len, batches)), 0
    new = None  # the file of new rows, when they are fewer than the group's
    params = {"created_at": int(time.time())}
    started = time.perf_counter()
    try:
        with services.store_lock, connections[using].cursor() as cursor:
            if services.unfinished_inserts():
                cursor.execute(f"SELECT id FROM ({rows})")
                services.complete_unfinished(cursor, using=using, wanted={row[0] for row in cursor.fetchall()})
            cursor.execute(GROUP_SUMMARY.format(rows=rows))
            ((stored, count, distinct, id_texts),) = cursor.fetchall()
            if distinct < count:  # an id in two of the group's batches: the first is kept
                rows = _first_of_each_id(batches)
                cursor.execute(GROUP_SUMMARY.format(rows=rows))
                ((stored, count, _, id_texts),) = cursor.fetchall()
            cursor.execute(SUPPRESSED_COUNT)
            if cursor.fetchall()[0][0]:
                cursor.execute(SUPPRESSED_AMONG.format(rows=rows))
                suppressed = cursor.fetchall()[0][0]
            if stored or suppressed:  # the rows to insert are fewer: written apart first
                new = Memfd()
                params["new"] = new.path
                cursor.execute(NEW_ROWS.format(rows=rows, unsuppressed=UNSUPPRESSED if suppressed else ""), params)
                rows = f"SELECT * FROM file(%(new)s, 'Native', '{NEW_STRUCTURE}')"  # (may be empty)
                cursor.execute(GROUP_SUMMARY.format(rows=rows), params)
                ((_, count, _, id_texts),) = cursor.fetchall()
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
        if new is not None:
            new.close()
    metrics.INSERT_SECONDS.labels(path).observe(time.perf_counter() - started)
    metrics.INSERT_ROWS.labels(path).observe(total)
    metrics.EVENTS_INGESTED.labels(path).inc(count)
    metrics.EVENTS_DUPLICATE.labels(path).inc(total - count - suppressed)
    if suppressed:
        metrics.EVENTS_SUPPRESSED.labels(path).inc(suppressed)
    return count
