"""Writes: storing viewing events, idempotently by event id."""

import threading
import time
import uuid
from datetime import datetime, timedelta

from django.db import connections

from analytics_site import metrics

from . import queries
from .suppression import events_unsuppressed

# A batch is checked against the stored ids and inserted under one lock, so two threads of
# this process cannot both decide that the same id is new. (Several processes writing to one
# ClickHouse server are covered for retries of the same batch; see docs/architecture.md, Idempotency.)
_store_lock = threading.Lock()
# Ids asked per look-up: keeps each query well under ClickHouse's max_query_size.
LOOKUP_CHUNK = 5000
_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)


def _id_text(event_id):
    # 32 hex digits, which toUUID reads as well as the dashed form: the driver escapes the
    # parameter one character at a time, so 4 characters less per id is ~1 µs less per event.
    return event_id.hex if type(event_id) is uuid.UUID else str(event_id)


def _stored_ids(cursor, ids):
    found = set()
    for start in range(0, len(ids), LOOKUP_CHUNK):
        cursor.execute(queries.STORED_IDS, {"ids": ",".join(map(_id_text, ids[start : start + LOOKUP_CHUNK]))})
        found.update(row[0] for row in cursor.fetchall())
    return found


def _epoch_seconds(moment):
    """A DateTime value as epoch seconds, which clickhouse-driver writes as they are; given a
    datetime it localizes (pytz), converts and calls timestamp() per value (~2 µs). Naive
    datetimes are UTC, as everywhere in the service."""
    if type(moment) is not datetime:
        return moment
    if moment.tzinfo is None:
        return (moment - _EPOCH) // _SECOND
    return int(moment.timestamp())


def _insert_values(event, created_at):
    """One event dict as the tuple of queries.EVENT_COLUMNS (built by name: the per-column loop
    with a created_at test per column cost ~1 µs per event; a test checks the order)."""
    created = event.get("created_at")
    return (
        event["id"],
        event["user_id"],
        event["movie_id"],
        event["event_type"],
        event["position_seconds"],
        _epoch_seconds(event["event_time"]),
        event["session_id"],
        event["metadata"],
        created_at if created is None else _epoch_seconds(created),
    )


def events_store(*, events, path="http", using="clickhouse", settings=None):
    """Store `events` (dicts with the columns of queries.EVENT_COLUMNS, created_at optional)
    in one INSERT, skipping every event whose id is already stored or repeated in the batch.
    `path`: the way in (http, kafka, generator), a label of the ingestion metrics.
    `settings`: ClickHouse settings for the INSERT (e.g. async inserts on a server).

    Returns the number of events newly stored. Either all new events are stored or, on error,
    none: the rows go in one block, which ClickHouse writes atomically.
    """
    created_at = int(time.time())
    unique = {}
    for event in events:
        unique.setdefault(event["id"], event)
    if not unique:
        return 0
    batch_unique = len(unique)
    started = time.perf_counter()
    with _store_lock, connections[using].cursor() as cursor:
        # Erased viewers' events are dropped here, under the lock (viewing/suppression.py).
        unique = events_unsuppressed(cursor, unique, path=path)
        suppressed = batch_unique - len(unique)
        stored = _stored_ids(cursor, list(unique))
        rows = [_insert_values(event, created_at) for event_id, event in unique.items() if event_id not in stored]
        if rows:
            if settings:
                cursor.cursor.set_settings(dict(settings))
            cursor.executemany(queries.INSERT_EVENTS, rows)
    metrics.INSERT_SECONDS.labels(path).observe(time.perf_counter() - started)
    metrics.INSERT_ROWS.labels(path).observe(len(events))
    metrics.EVENTS_INGESTED.labels(path).inc(len(rows))
    metrics.EVENTS_DUPLICATE.labels(path).inc(len(events) - len(rows) - suppressed)
    return len(rows)
