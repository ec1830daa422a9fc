"""Keeps every table's TTL equal to settings.RETENTION_DAYS, on each `migrate`.

The migrations create the tables with the retention of that day; when an operator changes
RETENTION_DAYS later, the next `migrate` alters the TTLs (no new migration needed). Which
tables expire by which column is declared in viewing/ddl.py.
"""

import logging
import re

from django.conf import settings
from django.db import connections

from viewing import ddl

log = logging.getLogger(__name__)

_TTL_DAYS = re.compile(r"TTL \w+ \+ toIntervalDay\((\d+)\)")


def retention_apply(*, using: str = "clickhouse", days: int | None = None) -> list[str]:
    """ALTER the TTL of every table whose retention differs from `days`; returns the tables altered."""
    days = int(days if days is not None else settings.RETENTION_DAYS)
    cluster = settings.CLICKHOUSE_CLUSTER
    altered = []
    with connections[using].cursor() as cursor:
        for table in ddl.TABLES:
            if table.name not in ddl.TTL_COLUMNS:
                continue  # never expires, or after a fixed interval
            name = table.local_name if cluster else table.name
            cursor.execute(
                "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = %(name)s",
                {"name": name},
            )
            rows = cursor.fetchall()
            if not rows:
                continue  # not migrated yet
            current = _TTL_DAYS.search(rows[0][0])
            if current and int(current.group(1)) == days:
                continue
            # Declared names and an integer, no input.
            cursor.execute(table.alter_ttl(days, cluster))
            altered.append(table.name)
    if altered:
        log.info("Retention set to %d days on %s", days, ", ".join(altered))
    return altered
