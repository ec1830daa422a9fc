"""Keeps every table's TTL equal to settings.RETENTION_DAYS, on each `migrate`.

The initial migration creates the tables with the retention of that day; when an operator
changes RETENTION_DAYS later, the next `migrate` alters the TTLs (no new migration needed).
"""

import logging
import re

from django.conf import settings
from django.db import connections

log = logging.getLogger(__name__)

# The time column each table expires by.
TTL_COLUMNS = {
    "viewing_events": "event_time",
    "event_ids": "event_time",
    "popular_content_daily": "day",
    "user_stats_daily": "day",
    "events_daily": "day",
    "events_hourly": "hour",
}
_TTL_DAYS = re.compile(r"TTL \w+ \+ toIntervalDay\((\d+)\)")


def retention_apply(*, using="clickhouse", days=None):
    """ALTER the TTL of every table whose retention differs from `days`; returns the tables altered."""
    days = int(days if days is not None else settings.RETENTION_DAYS)
    cluster = settings.CLICKHOUSE_CLUSTER
    altered = []
    with connections[using].cursor() as cursor:
        for table, column in TTL_COLUMNS.items():
            name = f"{table}_local" if cluster else table
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
            on_cluster = f" ON CLUSTER {cluster}" if cluster else ""
            # Values are integers and names come from TTL_COLUMNS, not from input.
            cursor.execute(f"ALTER TABLE {name}{on_cluster} MODIFY TTL {column} + INTERVAL {days} DAY")
            altered.append(table)
    if altered:
        log.info("Retention set to %d days on %s", days, ", ".join(altered))
    return altered
