"""Small parts in one file ("packed" part storage), from settings.CLICKHOUSE_PACKED_PART_BYTES,
applied on each `migrate` (like the retention and the fsync settings).

Why: every insert makes a new part in the raw table and in each table a view feeds, and a
part is about a dozen files (the columns' data and marks, checksums, the primary index,
partition and min/max files, ...), so one insert creates ~130 files. Creating files is the
kernel's work, and on some file systems a lot of it (docs/operations.md, "The data
directory's file system"). With `min_bytes_for_full_part_storage` a part smaller than the
threshold keeps its files inside one archive, `data.packed`; merges write the larger parts
in the usual one-file-per-stream layout ("Full"). Measured on the embedded engine, 200-event
inserts in a loop on ext4 without a journal: the kernel's CPU per insert 38 -> 10 ms, the
insert's wall time 82 -> 40 ms, the engine's own CPU unchanged (44 ms).

Packed storage is ClickHouse's (open-sourced in 2026, long used in ClickHouse Cloud; no
experimental flag). Its cost is a one-way door: a ClickHouse older than the first version that
reads `data.packed` cannot read such parts, so a downgrade needs them merged away first
(CLICKHOUSE_PACKED_PART_BYTES=0, migrate, then OPTIMIZE ... FINAL). A server that does not
know the setting is left as it is (and says so in the log).

CLICKHOUSE_PACKED_PART_BYTES: the threshold in uncompressed bytes; default 10 MiB, the size
under which ClickHouse already writes a part as one data file (Compact, min_bytes_for_wide_part),
so every part an insert of up to ~50,000 events makes is packed; 0: off.
"""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.db import connections

from viewing.table_settings import migrated_tables

log = logging.getLogger(__name__)

SETTING = "min_bytes_for_full_part_storage"
_CURRENT = re.compile(rf"\b{SETTING} = (\d+)")
SUPPORTED = "SELECT count() FROM system.merge_tree_settings WHERE name = %(name)s"


def packed_apply(*, using: str = "clickhouse", threshold: int | None = None) -> list[str]:
    """ALTER every data table whose packed-part threshold differs from `threshold` (default:
    settings.CLICKHOUSE_PACKED_PART_BYTES); returns them. Nothing on an engine without it."""
    threshold = settings.CLICKHOUSE_PACKED_PART_BYTES if threshold is None else threshold
    if threshold < 0:
        raise ValueError(f"CLICKHOUSE_PACKED_PART_BYTES must be 0 or more, not {threshold}")
    altered = []
    with connections[using].cursor() as cursor:
        cursor.execute(SUPPORTED, {"name": SETTING})
        if not cursor.fetchall()[0][0]:
            if threshold:
                log.info("This ClickHouse has no packed part storage (%s): parts keep one file per stream.", SETTING)
            return []
        for name, target, engine_full in migrated_tables(cursor):
            found = _CURRENT.search(engine_full)
            if (int(found.group(1)) if found else 0) == threshold:
                continue
            # Declared names and an integer, no input.
            if threshold:
                cursor.execute(f"ALTER TABLE {target} MODIFY SETTING {SETTING} = {int(threshold)}")
            else:
                cursor.execute(f"ALTER TABLE {target} RESET SETTING {SETTING}")
            altered.append(name)
    if altered:
        log.info("Packed parts below %d bytes (CLICKHOUSE_PACKED_PART_BYTES) set on %s", threshold, ", ".join(altered))
    return altered
