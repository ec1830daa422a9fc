"""Writes: storing viewing events, idempotently by event id, and completing an insert that
failed half-way.

ClickHouse does not write a table and its materialized views atomically: an INSERT can fail
after the raw table took the rows (a view's table refusing them, the disk filling up between
the parts), and a retry of the same events is then skipped by the id look-up as "already
stored" while the views stay short. So every insert carries an insert_deduplication_token
made from its ids (`_batch_token`), and the raw table and every table its views feed keep a
deduplication window (viewing/ddl_objects.py, INSERT_DEDUPLICATION). When an insert fails and
the raw table holds some of its rows, the insert is remembered and, before anything else is
stored, sent again with the same rows and token: ClickHouse skips every part the first
attempt wrote (raw table and views alike) and writes the missing ones. Until that succeeds,
a batch that shares an event with it fails too, so a retry is acknowledged only once every
table holds its events.
"""

import atexit
import hashlib
import logging
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings as django_settings
from django.db import DatabaseError, connections

from analytics_site import metrics

from . import queries
from .suppression import events_unsuppressed, suppression_recheck

# A batch is checked against the stored ids and inserted under one lock, so two threads of
# this process cannot both decide that the same id is new. (Several processes writing to one
# ClickHouse server are covered for retries of the same batch; see docs/architecture.md, Idempotency.)
_store_lock = threading.RLock()  # re-entrant: see writes_paused()
# The same lock for the erasure (viewing/erasure.py), which suppresses a user and mends the
# aggregates under it.
store_lock = _store_lock
# Ids asked per look-up: one look-up for a Kafka flush or a group of HTTP batches (at most
# 50,000 events); ~1.9 MB of ids, within max_query_size (settings.CLICKHOUSE_QUERY_SETTINGS).
# Each look-up has a fixed cost: for 20,000 ids, four look-ups of 5,000 took 2.7 µs an id,
# one of 20,000 1.6-1.9 µs (180,000 events stored).
LOOKUP_CHUNK = 50_000
_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)
# What an insert asks for so a repeat with the same token writes only what is missing, in the
# raw table and in every view (by default on recent ClickHouse; stated for older servers).
DEDUPLICATION = {"insert_deduplicate": 1, "deduplicate_blocks_in_dependent_materialized_views": 1}
# Unfinished inserts kept at most (each holds its rows); older ones are dropped with an error
# in the log, and verify_aggregates / rebuild_aggregates mend their days.
MAX_UNFINISHED = 32
log = logging.getLogger(__name__)


@dataclass
class _Unfinished:
    """An insert that failed after the raw table took (some of) its rows."""

    rows: list
    token: str
    path: str
    using: str
    ids: set = field(default_factory=set)
    written: bool | None = None  # None: not known yet (the check itself failed)
    attempts: int = 0


_unfinished: list[_Unfinished] = []


def _id_text(event_id):
    # 32 hex digits, which toUUID reads as well as the dashed form.
    return event_id.hex if type(event_id) is uuid.UUID else str(event_id)


class _IdList:
    """The ids parameter of queries.STORED_IDS / RAW_IDS_COUNT: a comma-separated string
    literal. clickhouse-driver escapes a str parameter one character at a time (~3 µs an
    event for 10,000 ids); ids of hex digits, dashes and commas need no escaping, so this
    object, which the driver formats as it is, quotes them itself. Anything else is left to
    the driver as a plain string."""

    __slots__ = ("text",)
    _SAFE = str.maketrans("", "", "0123456789abcdefABCDEF-,")

    def __init__(self, text):
        self.text = text

    def __str__(self):
        return f"'{self.text}'"

    @classmethod
    def of(cls, ids):
        return cls.of_texts(map(_id_text, ids))

    @classmethod
    def of_texts(cls, texts):
        text = ",".join(texts)
        return cls(text) if not text.translate(cls._SAFE) else text


def _stored_ids(cursor, texts):
    """The stored ids among those whose _id_text are `texts`."""
    found = set()
    for start in range(0, len(texts), LOOKUP_CHUNK):
        cursor.execute(queries.STORED_IDS, {"ids": _IdList.of_texts(texts[start : start + LOOKUP_CHUNK])})
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

    Returns the number of events newly stored. On error nothing of the batch is acknowledged:
    the error is raised, and if the raw table took rows of it anyway, the insert is completed
    (views included) before anything else is stored (see the module's docstring).
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
        complete_unfinished(cursor, using=using, wanted=unique.keys())
        # Erased viewers' events are dropped here, under the lock (viewing/suppression.py).
        unique = events_unsuppressed(cursor, unique, path=path)
        suppressed = batch_unique - len(unique)
        # Each id's text once, for the look-up and the token (~0.4 µs an event each time).
        texts = list(map(_id_text, unique))
        stored = _stored_ids(cursor, texts)
        if stored:
            new = [i for i, event_id in enumerate(unique) if event_id not in stored]
            kept, texts = list(unique.values()), [texts[i] for i in new]
            rows = [_insert_values(kept[i], created_at) for i in new]
        else:
            rows = [_insert_values(event, created_at) for event in unique.values()]
        if rows:
            insert_settings = {**django_settings.CLICKHOUSE_INSERT_SETTINGS, **(settings or {})}
            # Asynchronous inserts (server mode, single events) are left as they are: servers
            # before 26.x refuse view de-duplication with them.
            token = None if insert_settings.get("async_insert") else _batch_token(rows, texts)
            if token:
                insert_settings.update(DEDUPLICATION, insert_deduplication_token=token)
            try:
                _insert(cursor, rows, insert_settings)
            except DatabaseError:
                if token:
                    _remember(cursor, _Unfinished(rows, token, path, using))
                raise
    metrics.INSERT_SECONDS.labels(path).observe(time.perf_counter() - started)
    metrics.INSERT_ROWS.labels(path).observe(len(events))
    metrics.EVENTS_INGESTED.labels(path).inc(len(rows))
    metrics.EVENTS_DUPLICATE.labels(path).inc(len(events) - len(rows) - suppressed)
    if rows:
        # A generator: the embedded engine never reads it (a set cost ~0.2 µs an event for nothing).
        suppression_recheck(users=(row[1] for row in rows), using=using)
    return len(rows)


@contextmanager
def writes_paused():
    """No insert of this process runs while this is held (re-entrant): what a rebuild of the
    aggregates or an erasure holds so no event lands between its delete and its re-insert."""
    with _store_lock:
        yield


def unfinished_inserts() -> list[_Unfinished]:
    """The inserts waiting to be completed (for /metrics, ops and tests)."""
    return _unfinished


def unfinished_take_days() -> set:
    """Forget every unfinished insert and return the UTC days of its events. For a rebuild of
    the aggregates from the raw table: the rebuild of those days completes them (the raw table
    holds their rows), and sending them again after it would count their events twice in the
    views that had failed — or bring back the events of a viewer erased meanwhile."""
    with _store_lock:
        days = {datetime.fromtimestamp(row[5], UTC).date() for u in _unfinished for row in u.rows}
        _unfinished.clear()
        metrics.UNFINISHED_INSERTS.set(0)
        return days


def unfinished_rebuild_hint() -> str | None:
    """What to run once the cause is gone, when this process holds inserts it could not
    complete (it cannot after it exits): the rebuild of their days."""
    days = sorted({datetime.fromtimestamp(row[5], UTC).date() for u in _unfinished for row in u.rows})
    if not days:
        return None
    return f"manage.py rebuild_aggregates --from {days[0]} --to {days[-1]}"


@atexit.register
def _unfinished_at_exit():
    hint = unfinished_rebuild_hint()
    if hint:
        log.error("Exiting with %d inserts half-written (the raw table took their rows, a view did not); "
                  "once the cause is gone run `%s`.", len(_unfinished), hint)


def _batch_token(rows, texts=None):
    """The insert's deduplication token: a digest of its ids, its rows put in id order.

    The same events attempted again — by this process, or by another after this one died,
    say a re-run of generate_events or a Kafka batch read again — get the same token, so the
    raw table skips the parts it already took instead of storing them twice (the id look-up
    reads event_ids, which a failed view may have left without them). Sorted, so the same
    events split into the same parts. An id set is inserted once in its life: an erased
    viewer's events are refused, events past retention too.

    `texts`: each row's _id_text (text: ids may come as UUIDs or strings), when the caller has
    them already (events_store made them for the look-up); computing them once and sorting
    indexes by them costs ~1 µs an event less than a key function per row."""
    if texts is None:
        texts = [_id_text(row[0]) for row in rows]
    order = sorted(range(len(rows)), key=texts.__getitem__)
    rows[:] = [rows[i] for i in order]
    return ids_token("".join([texts[i] for i in order]))


def ids_token(sorted_id_texts: str) -> str:
    """The deduplication token of the ids whose _id_text, sorted and joined, are this text
    (the engine path of batches computes that text in SQL: viewing/engine_store.py)."""
    return hashlib.blake2b(sorted_id_texts.encode(), digest_size=16).hexdigest()


def run_with_settings(cursor, sql: str, params, insert_settings: dict, *, many: bool = False) -> None:
    """Run one INSERT with these ClickHouse settings (and none of them after)."""
    cursor.cursor.set_settings(insert_settings)
    try:
        (cursor.executemany if many else cursor.execute)(sql, params)
    finally:
        cursor.cursor.set_settings({})


def _insert(cursor, rows, insert_settings):
    run_with_settings(cursor, queries.INSERT_EVENTS, rows, insert_settings, many=True)


def remember_unfinished(cursor, rows: list, token: str, *, path: str, using: str) -> None:
    """After a failed insert of `rows` (services' insert tuples) with `token`: complete it
    before anything else is stored if the raw table took rows of it (the engine path's)."""
    _remember(cursor, _Unfinished(rows, token, path, using))


def _raw_holds_any(cursor, rows):
    """Whether the raw table holds any of these rows (by id, within their time range)."""
    times = [row[5] for row in rows]
    params = {"first": min(times), "last": max(times)}
    for start in range(0, len(rows), LOOKUP_CHUNK):
        ids = _IdList.of(row[0] for row in rows[start : start + LOOKUP_CHUNK])
        cursor.execute(queries.RAW_IDS_COUNT, {**params, "ids": ids})
        if cursor.fetchall()[0][0]:
            return True
    return False


def _remember(cursor, unfinished):
    """After a failed insert: keep it for completion if the raw table took rows of it."""
    unfinished.ids = {row[0] for row in unfinished.rows}
    try:
        unfinished.written = _raw_holds_any(cursor, unfinished.rows)
    except DatabaseError:
        unfinished.written = None  # asked again before it is sent again
    if unfinished.written is False:
        return  # a clean failure: nothing of it is stored
    _unfinished.append(unfinished)
    log.warning("An insert of %d events failed after the raw table took rows of it; it is completed "
                "(raw table and views) before the next events are stored.", len(unfinished.rows))
    while len(_unfinished) > MAX_UNFINISHED:
        dropped = _unfinished.pop(0)
        days = sorted({datetime.fromtimestamp(row[5], UTC).date() for row in dropped.rows})
        log.error("Gave up completing an insert of %d events (more than %d are waiting); once the cause is "
                  "gone run `manage.py rebuild_aggregates --from %s --to %s`.",
                  len(dropped.rows), MAX_UNFINISHED, days[0], days[-1])
    metrics.UNFINISHED_INSERTS.set(len(_unfinished))


def complete_unfinished(cursor, *, using, wanted):
    """Send every remembered insert again (same rows, same token). One that still fails is
    kept; it fails the current batch only if the batch shares an event with it, so a retry is
    never acknowledged while the views lack its events."""
    for unfinished in list(_unfinished):
        if unfinished.using != using:
            continue
        unfinished.attempts += 1
        try:
            if unfinished.written is None:
                unfinished.written = _raw_holds_any(cursor, unfinished.rows)
            if unfinished.written:
                # Today's insert settings, the first attempt's token: only the missing parts.
                _insert(cursor, unfinished.rows, {**django_settings.CLICKHOUSE_INSERT_SETTINGS, **DEDUPLICATION,
                                                  "insert_deduplication_token": unfinished.token})
                metrics.EVENTS_INGESTED.labels(unfinished.path).inc(len(unfinished.rows))
                log.info("Completed an insert of %d events that had failed half-way (attempt %d).",
                         len(unfinished.rows), unfinished.attempts)
            _unfinished.remove(unfinished)
        except DatabaseError:
            if any(event_id in unfinished.ids for event_id in wanted):
                raise
            log.warning("An insert of %d events that failed half-way still cannot be completed "
                        "(attempt %d); it is tried again with the next events.",
                        len(unfinished.rows), unfinished.attempts)
        finally:
            metrics.UNFINISHED_INSERTS.set(len(_unfinished))
