"""Every table the raw events feed, checked against and rebuilt from the raw table, by UTC day.

The materialized views keep each table (event_ids and the aggregates) in step with the raw
table as events are inserted. Should they drift — a process that died between the raw table
and its views, rows erased from the raw table, a table repaired by hand — `aggregates_verify`
says which table and day differ and `aggregates_rebuild` recomputes those days from the raw
table with the view's own SELECT, so a rebuilt day holds exactly what the views would have
written. Both work from the schema registry (viewing/ddl.py): every view whose source is the
raw table, its target's key and value columns, and the target's time column for the day.

How a day is compared: the stored rows of the day grouped by the target's key (its ORDER BY;
every column for a plain MergeTree, counting duplicates) with the values finalized
(sumsimple → sum, min, max, uniq states merged), against the same computed from the raw rows
of the day; per day, the number of keys and a sum of row hashes must be equal. A table that
keeps only recent rows (ttl_interval) is compared over that interval less 10 minutes, since
rows age out of it by a background TTL.

Writes and a rebuild: a rebuild deletes the days' rows (lightweight DELETE) and inserts them
again from the raw table. An insert landing in between would be lost or counted twice, so the
rebuild holds the store lock (viewing/services.py) — on the embedded engine every write goes
through it. On a ClickHouse server with other writer processes that is not enough: stop the
writers (API, consumers) while rebuilding days that still receive events.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date

from django.db import connections

from . import ddl
from .ddl_objects import MaterializedView, Table
from .services import unfinished_take_days, writes_paused

RAW = ddl.VIEWING_EVENTS
# Rows of the days asked, as the views' SELECTs read them (their FROM {source}).
RAW_DAYS = f"(SELECT * FROM {RAW.name} WHERE toDate(event_time) IN %(days)s)"
# Settings of a rebuild's statements: wait for the delete; never de-duplicate the re-insert
# against the block ids of earlier inserts (a rebuilt day can equal one written before).
DELETE_SETTINGS = {"lightweight_deletes_sync": 2}
INSERT_SETTINGS = {"insert_deduplicate": 0}
_SIMPLE = re.compile(r"^SimpleAggregateFunction\((\w+),")
_STATE = re.compile(r"^AggregateFunction\((\w+),")


@dataclass(frozen=True)
class Drift:
    """One table and day whose stored rows differ from what the raw table implies."""

    table: str
    day: date
    stored_rows: int
    expected_rows: int

    def __str__(self) -> str:
        return (f"{self.table} {self.day}: {self.stored_rows} rows stored, {self.expected_rows} expected "
                f"from the raw table{'' if self.stored_rows != self.expected_rows else ' (values differ)'}")


def fed_views() -> list[MaterializedView]:
    """The views that feed a table from the raw events, in the registry's order."""
    return [view for view in ddl.VIEWS if view.source is RAW]


def _key_columns(table: Table) -> list[str]:
    if table.engine.family == "MergeTree":
        return table.column_names
    return [c.strip() for c in table.order_by.strip("()").split(",")]


def _finalized(column: str, type_: str) -> str:
    if simple := _SIMPLE.match(type_):
        return f"{simple.group(1)}({column})"
    if state := _STATE.match(type_):
        return f"{state.group(1)}Merge({column})"
    raise ValueError(f"no finalization for {column} {type_}")


def _grouped(table: Table, source: str) -> str:
    """`source`'s rows (shaped like `table`) grouped by the table's key, values finalized,
    plus the day and, for a plain MergeTree, how often each row occurs."""
    keys = _key_columns(table)
    values = [_finalized(name, type_) for name, type_ in table.columns if name not in keys]
    if table.engine.family == "MergeTree":
        values = ["count()"]
    return (f"SELECT toDate({table.ttl_column}) AS _day, {', '.join(keys + values)} "
            f"FROM {source} GROUP BY {', '.join(keys)}")


def _recent_only(table: Table) -> str:
    # Rows of a table of recent rows age out by a background TTL: compare inside its interval.
    if table.ttl_interval is None:
        return ""
    return f" AND {table.ttl_column} > now() - {table.ttl_interval} + INTERVAL 10 MINUTE"


def _day_digests(cursor, sql: str, days: list[date]) -> dict[date, tuple[int, int]]:
    cursor.execute(f"SELECT _day, count(), sum(cityHash64(*)) FROM ({sql}) GROUP BY _day", {"days": tuple(days)})
    return {day: (rows, digest) for day, rows, digest in cursor.fetchall()}


def aggregates_verify(*, days: list[date], using: str = "clickhouse") -> list[Drift]:
    """Every (table, day) among `days` whose stored rows differ from the raw table's."""
    if not days:
        return []
    drifts = []
    with connections[using].cursor() as cursor:
        for view in fed_views():
            table = view.target
            stored = _day_digests(cursor, _grouped(table, (
                f"(SELECT * FROM {table.name} WHERE toDate({table.ttl_column}) IN %(days)s{_recent_only(table)})")),
                days)
            expected = _day_digests(cursor, _grouped(table, (
                f"({view.select.strip().replace('{source}', RAW_DAYS)})"
                f"{' WHERE 1' + _recent_only(table) if table.ttl_interval else ''}")), days)
            for day in sorted(set(stored) | set(expected)):
                if stored.get(day) != expected.get(day):
                    drifts.append(Drift(table.name, day, stored.get(day, (0, 0))[0], expected.get(day, (0, 0))[0]))
    return drifts


def aggregates_rebuild(
    *, days: list[date], using: str = "clickhouse", tables: list[Table] | None = None
) -> dict[str, float]:
    """Recompute every table the raw events feed (or only `tables`), for `days` (UTC dates),
    from the raw table. Holds the store lock: no insert of this process lands in between.
    Inserts left half-written are completed on the way: every table is rebuilt for their days
    too, and they are forgotten (services.unfinished_take_days).
    Returns the seconds each table took."""
    seconds = {}
    with writes_paused(), connections[using].cursor() as cursor:
        pending = unfinished_take_days()
        for view in fed_views():
            table, started = view.target, time.perf_counter()
            wanted = tuple(sorted((set(days) if tables is None or table in tables else set()) | pending))
            if not wanted:
                continue
            cursor.cursor.set_settings(DELETE_SETTINGS)
            cursor.execute(f"DELETE FROM {table.name} WHERE toDate({table.ttl_column}) IN %(days)s",
                           {"days": wanted})
            cursor.cursor.set_settings(INSERT_SETTINGS)
            columns = ", ".join(table.column_names)  # by name: INSERT ... SELECT maps by position
            cursor.execute(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM "
                           f"({view.select.strip().replace('{source}', RAW_DAYS)})", {"days": wanted})
            cursor.cursor.set_settings({})
            seconds[table.name] = time.perf_counter() - started
    return seconds
