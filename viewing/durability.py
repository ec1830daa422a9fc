"""What survives a power cut: which tables fsync each new part, from settings.CLICKHOUSE_FSYNC,
applied on each `migrate` (like the retention).

ClickHouse writes a part and renames it into place without fsync by default: after a crash of
the process the part is there (the OS has it), after a power loss or a kernel crash the last
seconds of acknowledged inserts can be gone. `fsync_after_insert` and `fsync_part_directory`
make the INSERT return only once the part's files and directory are on disk.

CLICKHOUSE_FSYNC:
- "stored" (default): the tables that say what is stored — the raw events, the id look-up
  (a lost id would let a retry store an event twice) and the suppression list. The
  aggregates are not: after a power loss `verify_aggregates` finds what they lost and
  `rebuild_aggregates` recomputes it from the raw table. Measured on the embedded engine:
  +11 % per 10,000-event insert, +18 % per 10-event insert (medians).
- "all": every table; measured 2–3.5 × the insert time.
- "off": ClickHouse's default, nothing fsynced.
"""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.db import connections

from viewing import ddl
from viewing.table_settings import migrated_tables

log = logging.getLogger(__name__)

CHOICES = ("stored", "all", "off")
# The tables that say what is stored; everything else is derived from them.
STORED_TABLES = ("viewing_events", "event_ids", "suppressed_users")
SETTINGS = ("fsync_after_insert", "fsync_part_directory")
_SETTING = re.compile(r"\b(fsync_after_insert|fsync_part_directory) = (\d)")


def fsync_tables(mode: str) -> list[str]:
    """The data tables that fsync their parts under CLICKHOUSE_FSYNC = `mode`."""
    if mode not in CHOICES:
        raise ValueError(f"CLICKHOUSE_FSYNC must be one of {', '.join(CHOICES)}, not {mode!r}")
    if mode == "off":
        return []
    return [t.name for t in ddl.TABLES if mode == "all" or t.name in STORED_TABLES]


def durability_apply(*, using: str = "clickhouse", mode: str | None = None) -> list[str]:
    """ALTER every data table whose fsync settings differ from what `mode` asks; returns them."""
    mode = mode or settings.CLICKHOUSE_FSYNC
    wanted = set(fsync_tables(mode))
    altered = []
    with connections[using].cursor() as cursor:
        for name, target, engine_full in migrated_tables(cursor):
            current = {key: value == "1" for key, value in _SETTING.findall(engine_full)}
            on = name in wanted
            if all(current.get(key, False) == on for key in SETTINGS):
                continue
            # Declared names and constants only, no input.
            if on:
                cursor.execute(f"ALTER TABLE {target} MODIFY SETTING fsync_after_insert = 1, fsync_part_directory = 1")
            else:
                cursor.execute(f"ALTER TABLE {target} RESET SETTING fsync_after_insert, fsync_part_directory")
            altered.append(name)
    if altered:
        log.info("fsync of new parts (CLICKHOUSE_FSYNC=%s) set on %s", mode, ", ".join(altered))
    return altered
