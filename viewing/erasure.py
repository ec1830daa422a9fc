"""Erasing a viewer: every stored event of theirs, in the raw table, in every table fed from it
and in every aggregate, so that every answer is as if those events had never been stored;
then the viewer stays on the suppression list (viewing/suppression.py) and the erasure is
recorded (analytics_site.privacy).

Which tables and how, from the schema registry (viewing/ddl.py), so a table added there is
covered or refused, never forgotten:
- tables with a `user_id` column whose rows are one user's (the raw table, lookups like
  recent_events, aggregates keyed by user like user_stats_daily or view_segments): the user's
  rows are deleted;
- event_ids (ids, no user): the user's ids are deleted;
- aggregates whose rows mix users (popular_content_daily, events_daily, trends_hourly, ...: a
  `uniq` state cannot forget one viewer): every row of the UTC dates the user had events on
  is deleted and computed again from the raw table by the view's own SELECT
  (viewing.aggregates.aggregates_rebuild; exact because each such table's time column lies
  within its events' UTC date, which a test checks).

Order, so that neither an insert racing the erasure nor a crash half-way brings the user back:
1. Suppress first, under the store lock (services.events_store checks the list under the same
   lock): no insert of this process can store the user afterwards. On a ClickHouse server,
   other processes re-check the list after their insert (suppression.suppression_recheck).
2. The dates come from the raw rows and from the per-user rows of the other tables, so an
   erasure repeated after a crash finds the dates the first attempt had not mended yet.
3. Raw rows and event ids, then the mixed aggregates (under the store lock: an insert between
   deleting a day's rows and computing them again would be counted twice), then the per-user
   rows last.
Deletes are ClickHouse lightweight DELETEs (synchronous: they return once applied).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import connections

from . import ddl
from .aggregates import aggregates_rebuild, fed_views
from .services import store_lock, unfinished_inserts
from .suppression import user_suppress, user_unsuppress

log = logging.getLogger(__name__)

# Named statements; table names come from the registry, values are parameters.
USER_EVENT_IDS = "SELECT id, toDate(event_time) FROM viewing_events WHERE user_id = %(user_id)s"
DELETE_BY_USER = "DELETE FROM {table} WHERE user_id = %(user_id)s"
USER_DATES = "SELECT DISTINCT toDate({column}) FROM {table} WHERE user_id = %(user_id)s"
DELETE_BY_IDS = "DELETE FROM {table} WHERE id IN (SELECT toUUID(arrayJoin(splitByChar(',', %(ids)s))))"
IDS_CHUNK = 5000


class ErasureUnsupported(Exception):
    """An erasure this deployment cannot do exactly (a cluster), refused before it starts."""


class ErasureNotNow(Exception):
    """An insert that failed half-way is waiting to be completed (viewing/services.py): its
    completion would write view rows the erasure's rebuild already computed from the raw
    table, so the erasure waits for it. Retry once inserts succeed again."""


@dataclass(frozen=True)
class Plan:
    """How each table of the registry is cleaned of one user."""

    by_user: list[ddl.Table]  # rows are one user's: delete them
    by_ids: list[ddl.Table]  # ids of events, no user: delete the user's ids
    rebuilt: list[ddl.Table]  # rows mix users: the user's dates, deleted and computed again


def _order_by_columns(table: ddl.Table) -> set[str]:
    return {part.strip() for part in table.order_by.strip("()").split(",")}


def erasure_plan(tables: list[ddl.Table] | None = None) -> Plan:
    """The plan for the registry's tables; a table it cannot place is an error (a new table
    needs a decision here before an erasure can be exact)."""
    by_user, by_ids, rebuilt = [], [], []
    for table in ddl.TABLES if tables is None else tables:
        if table.name == "suppressed_users":
            continue
        columns = set(table.column_names)
        if table.kind == "aggregate" and "user_id" not in _order_by_columns(table):
            if not any(v.target is table for v in fed_views()):
                raise ErasureUnsupported(f"{table.name}: not fed from viewing_events by a materialized view")
            rebuilt.append(table)
        elif "user_id" in columns:
            by_user.append(table)
        elif "id" in columns:
            by_ids.append(table)
        else:
            raise ErasureUnsupported(f"{table.name}: neither a user_id nor an id column; erasure cannot clean it")
    return Plan(by_user=by_user, by_ids=by_ids, rebuilt=rebuilt)


def _rows(cursor, sql, params=None):
    cursor.execute(sql, params)
    return cursor.fetchall()


def user_erase(*, user_id: uuid.UUID, requested_by: str, api_key_prefix: str = "", using: str = "clickhouse") -> dict:
    """Erase every stored event of `user_id` (see the module docstring) and record it.
    Returns {"user_id", "events_deleted"}: the raw events removed (0 when there were none)."""
    if settings.CLICKHOUSE_CLUSTER:
        raise ErasureUnsupported("Erasure is not available on a ClickHouse cluster yet (docs/api.md, Erasure).")
    from analytics_site.privacy.models import ErasureRecord

    plan = erasure_plan()
    started = time.monotonic()
    params = {"user_id": user_id}
    with connections[using].cursor() as cursor:
        with store_lock:
            user_suppress(cursor, user_id=user_id)
            if any(u.using == using for u in unfinished_inserts()):
                raise ErasureNotNow(
                    "An insert that failed half-way is still being completed; the viewer is on the "
                    "suppression list already, try the erasure again once inserts succeed."
                )
        events = _rows(cursor, USER_EVENT_IDS, params)
        ids = [row[0] for row in events]
        dates = {row[1] for row in events}
        for table in plan.by_user:
            if table.ttl_column and table.name != "viewing_events":
                sql = USER_DATES.format(column=table.ttl_column, table=table.name)
                dates.update(row[0] for row in _rows(cursor, sql, params))
        if ids:
            for table in plan.by_ids:
                for start in range(0, len(ids), IDS_CHUNK):
                    chunk = ",".join(i.hex for i in ids[start : start + IDS_CHUNK])
                    cursor.execute(DELETE_BY_IDS.format(table=table.name), {"ids": chunk})
            cursor.execute(DELETE_BY_USER.format(table="viewing_events"), params)
        aggregates_rebuild(days=sorted(dates), tables=plan.rebuilt, using=using)
        for table in plan.by_user:
            if table.name != "viewing_events":
                cursor.execute(DELETE_BY_USER.format(table=table.name), params)
    seconds = time.monotonic() - started
    ErasureRecord.objects.create(
        user_id=user_id, requested_by=requested_by[:120], api_key_prefix=api_key_prefix,
        events_deleted=len(ids), seconds=round(seconds, 3),
    )
    log.info("Erased user %s: %d events, %d dates rebuilt, %.2f s (%s)", user_id, len(ids), len(dates), seconds,
             requested_by)
    return {"user_id": str(user_id), "events_deleted": len(ids)}


def suppression_lift(*, user_id: uuid.UUID, requested_by: str, reason: str, using: str = "clickhouse") -> dict:
    """Undo a suppression entry made by mistake: `user_id` leaves the suppression list, so
    their events from now on are stored (what was erased stays erased), and the lift is
    recorded beside the erasures. Returns {"user_id", "was_suppressed"}."""
    if settings.CLICKHOUSE_CLUSTER:
        raise ErasureUnsupported("Lifting a suppression is not available on a ClickHouse cluster yet.")
    from analytics_site.privacy.models import SuppressionLift

    with connections[using].cursor() as cursor, store_lock:
        was_suppressed = user_unsuppress(cursor, user_id=user_id)
    SuppressionLift.objects.create(
        user_id=user_id, requested_by=requested_by[:120], reason=reason, was_suppressed=was_suppressed,
    )
    log.info("Suppression of user %s lifted (%s; was on the list: %s): %s", user_id, requested_by, was_suppressed,
             reason)
    return {"user_id": str(user_id), "was_suppressed": was_suppressed}
