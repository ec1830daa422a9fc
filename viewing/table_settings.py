"""The data tables as this database has them, for the table settings `migrate` applies after
every migration (viewing/durability.py: fsync; viewing/part_storage.py: packed parts)."""

from collections.abc import Iterator

from django.conf import settings

from viewing import ddl

ENGINE_FULL = "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = %(name)s"


def migrated_tables(cursor) -> Iterator[tuple[str, str, str]]:
    """(declared name, ALTER TABLE target, engine_full with its SETTINGS) of every data table
    this database has; the local tables ON CLUSTER in cluster mode. A table not migrated yet is
    left out."""
    cluster = settings.CLICKHOUSE_CLUSTER
    for table in ddl.TABLES:
        name = table.local_name if cluster else table.name
        cursor.execute(ENGINE_FULL, {"name": name})
        rows = cursor.fetchall()
        if rows:
            yield table.name, (f"{name} ON CLUSTER {cluster}" if cluster else name), rows[0][0]
