"""`migrate` creates the whole schema, and clickhouse/schema.sql (the registry's DDL) creates
the same database."""

from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

from tests.conftest import query
from tests.viewing.test_migrations import migration_statements
from viewing import ddl

OBJECTS = ddl.DATA_TABLES
VIEWS = [view.name for view in ddl.VIEWS]


def show_create(name):
    return query(f"SHOW CREATE TABLE {name}")[0][0]


def test_raw_table_matches_the_documented_columns(ch):
    columns = query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
        "AND table = 'viewing_events' ORDER BY position"
    )
    assert columns == [
        ("id", "UUID"),
        ("user_id", "UUID"),
        ("movie_id", "UUID"),
        ("event_type", "LowCardinality(String)"),
        ("position_seconds", "UInt32"),
        ("event_time", "DateTime('UTC')"),
        ("session_id", "Nullable(UUID)"),
        ("metadata", "String"),
        ("created_at", "DateTime('UTC')"),
    ]
    ((engine, partition_key, sorting_key, engine_full),) = query(
        "SELECT engine, partition_key, sorting_key, engine_full FROM system.tables "
        "WHERE database = currentDatabase() AND name = 'viewing_events'"
    )
    assert engine == "MergeTree"
    assert partition_key == "toYYYYMM(event_time)"
    assert sorting_key == "toDate(event_time), user_id, event_time"
    assert f"TTL event_time + toIntervalDay({settings.RETENTION_DAYS})" in engine_full
    indexes = query(
        "SELECT name, expr, type_full FROM system.data_skipping_indices "
        "WHERE database = currentDatabase() AND table = 'viewing_events' ORDER BY name"
    )
    assert indexes == [
        ("idx_movie_id", "movie_id", "bloom_filter(0.01)"),
        ("idx_session_id", "session_id", "bloom_filter(0.01)"),
        ("idx_user_id", "user_id", "bloom_filter(0.01)"),
    ]


def test_views_feed_aggregating_tables(ch):
    for view in VIEWS:
        assert "CREATE MATERIALIZED VIEW" in show_create(view)
    engines = dict(query(
        "SELECT name, engine FROM system.tables WHERE database = currentDatabase() "
        "AND name IN ('popular_content_daily', 'user_stats_daily', 'events_daily', 'trends_hourly')"
    ))
    assert set(engines.values()) == {"AggregatingMergeTree"}


def _sorted_settings(ttl_and_settings):
    # fsync and packed parts are applied by migrate from CLICKHOUSE_FSYNC and
    # CLICKHOUSE_PACKED_PART_BYTES (viewing/durability.py, part_storage.py), not declared.
    ttl, _, settings = ttl_and_settings.partition(" SETTINGS ")
    kept = sorted(s for s in settings.split(", ")
                  if settings and not s.startswith(("fsync_", "min_bytes_for_full_part_storage")))
    return f"{ttl} SETTINGS {', '.join(kept)}" if kept else ttl


def describe(database):
    """Everything that defines each table and view of a database, in comparable form."""
    tables = query(
        "SELECT name, engine, partition_key, sorting_key, primary_key, "
        "replaceRegexpAll(engine_full, '^.*?(TTL .*?)?( SETTINGS .*)?$', '\\\\1 \\\\2'), "
        "replaceAll(as_select, %(db)s || '.', '') "
        "FROM system.tables WHERE database = %(db)s AND name != 'django_migrations' ORDER BY name",
        {"db": database},
    )
    # A setting added later by ALTER ... MODIFY SETTING comes after the ones of CREATE: the
    # order of settings means nothing, so they are compared sorted.
    tables = [(*row[:5], _sorted_settings(row[5]), row[6]) for row in tables]
    columns = query(
        "SELECT table, name, type, default_expression FROM system.columns "
        "WHERE database = %(db)s AND table != 'django_migrations' ORDER BY table, position",
        {"db": database},
    )
    indexes = query(
        "SELECT table, name, expr, type_full, granularity FROM system.data_skipping_indices "
        "WHERE database = %(db)s ORDER BY table, name",
        {"db": database},
    )
    return tables, columns, indexes


@pytest.fixture
def schema_sql_database(ch):
    database = "schema_sql_check"
    with connections["clickhouse"].cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {database}")
        cursor.execute(f"CREATE DATABASE {database}")
        text = (Path(settings.BASE_DIR) / "clickhouse" / "schema.sql").read_text()
        statements = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
        cursor.execute(f"USE {database}")
        try:
            for statement in filter(str.strip, statements.split(";")):
                cursor.execute(statement)
        finally:
            cursor.execute(f"USE {connections['clickhouse'].settings_dict['NAME']}")
    yield database
    with connections["clickhouse"].cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {database}")


def test_schema_sql_creates_what_the_migrations_create(ch, schema_sql_database):
    if settings.RETENTION_DAYS != 365:
        pytest.skip("schema.sql is written for the default retention of 365 days")
    migrated = describe(connections["clickhouse"].settings_dict["NAME"])
    from_file = describe(schema_sql_database)
    assert [t[0] for t in migrated[0]] == sorted(OBJECTS + VIEWS)
    assert from_file == migrated


def test_retention_is_a_setting():
    statements = migration_statements(RETENTION_DAYS=30)
    # + 1: events_hourly, created with its TTL by 0001 and dropped by 0007.
    assert sum("\nTTL " in s and " + INTERVAL 30 DAY" in s for s in statements) == len(ddl.TTL_COLUMNS) + 1
    assert not any("INTERVAL 365 DAY" in s for s in statements)


def test_cluster_name_must_be_an_identifier():
    with pytest.raises(ValueError, match="CLICKHOUSE_CLUSTER"):
        migration_statements(CLICKHOUSE_CLUSTER="x; DROP TABLE y")
