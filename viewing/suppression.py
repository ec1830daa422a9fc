"""The suppression list: viewers who were erased, whose later events are not stored.

Every way in (HTTP single and batch, Kafka, generate_events) stores through
services.events_store, which calls `events_unsuppressed` under its store lock: a suppressed
viewer's events are acknowledged as usual (a producer must not retry them forever), counted in
`analytics_events_suppressed_total{path}`, and never written. The list is the ClickHouse table
`suppressed_users`, so it survives restarts and every writer process — the API server, a
`consume_stream` on another host — reads the same list.
"""

import threading
import time
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db import connections

from analytics_site import metrics

# What the list holds, in two numbers: any insert, merge or truncation changes them. Read on
# every write (a scan of one small column), so a cached copy of the list is never stale.
VERSION = "SELECT count(), sum(cityHash64(user_id)) FROM suppressed_users"
SUPPRESSED_ALL = "SELECT DISTINCT user_id FROM suppressed_users"
# Which of these users are suppressed, for lists too long to keep in memory. The users come
# as one comma-separated string, read the way queries.STORED_IDS reads ids.
SUPPRESSED_AMONG = """
SELECT DISTINCT user_id
FROM suppressed_users
WHERE user_id IN (SELECT toUUID(arrayJoin(splitByChar(',', %(users)s))))
"""
SUPPRESS = "INSERT INTO suppressed_users (user_id, suppressed_at) VALUES"
IS_SUPPRESSED = "SELECT count() FROM suppressed_users WHERE user_id = %(user_id)s"
UNSUPPRESS = "DELETE FROM suppressed_users WHERE user_id = %(user_id)s"
# Up to this many users the list is kept in memory (~10 MB): checking a batch is then one
# tiny query and a set intersection, ~0.1 µs per event, where asking with the batch's users
# costs the driver and the engine ~3 µs per user (10,000 users: ~35 ms).
CACHE_LIMIT = 100_000

_cache_lock = threading.Lock()
_cache = {"version": None, "users": frozenset()}


def _as_uuid(value) -> uuid.UUID:
    return value if type(value) is uuid.UUID else uuid.UUID(str(value))


def _rows(cursor, sql, params=None):
    cursor.execute(sql, params)
    return cursor.fetchall()


def suppressed_among(cursor, users: Iterable) -> set[uuid.UUID]:
    """The users of `users` that are on the suppression list, as the table holds it now."""
    ((count, checksum),) = _rows(cursor, VERSION)
    if count == 0:
        return set()
    users = {_as_uuid(u) for u in users}
    if count > CACHE_LIMIT:
        return {row[0] for row in _rows(cursor, SUPPRESSED_AMONG, {"users": ",".join(u.hex for u in users)})}
    with _cache_lock:
        if _cache["version"] != (count, checksum):
            _cache["users"] = frozenset(row[0] for row in _rows(cursor, SUPPRESSED_ALL))
            _cache["version"] = (count, checksum)
        return users & _cache["users"]


def events_unsuppressed(cursor, events: dict, *, path: str) -> dict:
    """`events` (id → row dict) without the events of suppressed users, which are counted
    in the metrics for `path`. Called by events_store under its lock (see user_suppress)."""
    suppressed = suppressed_among(cursor, (e["user_id"] for e in events.values()))
    if not suppressed:
        return events
    kept = {i: e for i, e in events.items() if _as_uuid(e["user_id"]) not in suppressed}
    metrics.EVENTS_SUPPRESSED.labels(path).inc(len(events) - len(kept))
    return kept


def user_suppress(cursor, *, user_id) -> None:
    """Put `user_id` on the list. The caller holds the store lock, so no insert of this
    process has checked the list and not yet written (its rows are then found by the delete
    that follows)."""
    cursor.executemany(SUPPRESS, [(_as_uuid(user_id), int(time.time()))])


def user_unsuppress(cursor, *, user_id) -> bool:
    """Take `user_id` off the list (a synchronous lightweight DELETE); True when they were on
    it. The caller holds the store lock. Their erased events stay erased; their events from
    now on are stored. The list's version changes, so no cached copy keeps them."""
    params = {"user_id": _as_uuid(user_id)}
    ((count,),) = _rows(cursor, IS_SUPPRESSED, params)
    if count:
        cursor.execute(UNSUPPRESS, params)
    return bool(count)


def suppression_recheck(*, users: Iterable, using: str = "clickhouse", embedded: bool | None = None) -> list:
    """After an insert: erase again any of `users` that became suppressed meanwhile. Needed
    only where several processes write (a ClickHouse server): one may check the list, another
    suppress and delete the user, and the first then insert. On the embedded engine (one
    process) the store lock already orders them, so nothing is asked. Returns the users
    erased again."""
    if settings.CLICKHOUSE_EMBEDDED if embedded is None else embedded:
        return []
    with connections[using].cursor() as cursor:
        raced = suppressed_among(cursor, users)
    if not raced:
        return []
    from .erasure import user_erase  # erasure uses this module's list

    for user_id in sorted(raced, key=str):
        user_erase(user_id=user_id, requested_by="write path: an insert raced the erasure", using=using)
    return sorted(raced, key=str)
