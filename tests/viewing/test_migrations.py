"""The ClickHouse migrations and the schema registry: 0001 frozen byte for byte, migrations and
registry describing one schema (one node and cluster), the model's Meta saying what the DDL
says, and a migration written by `python -m viewing.ddl migration` creating and backfilling
a table on a database that already holds events."""

import hashlib
import importlib
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connections, migrations
from django.db.migrations.loader import MigrationLoader
from django.test import override_settings

from tests.conftest import query
from viewing import ddl, ddl_migrations
from viewing.models import ViewingEvent

# sha256 of the statements 0001 ran when it was written (RETENTION_DAYS, CLICKHOUSE_CLUSTER):
# a database it created must be re-creatable by it, so it never changes.
INITIAL_DIGESTS = {
    (365, None): "6637fa4bb5a62be5",
    (365, "analytics_cluster"): "5a4a4e72a0d69824",
    (30, None): "c3dd3112fe76e79b",
    (30, "c2"): "ee45cc8f6681955d",
}


def digest(statements):
    return hashlib.sha256(repr(statements).encode()).hexdigest()[:16]


@pytest.mark.parametrize(("days", "cluster"), list(INITIAL_DIGESTS))
def test_the_initial_migration_runs_what_it_always_ran(days, cluster):
    initial = importlib.import_module("viewing.migrations.0001_initial")
    assert digest(initial.frozen_statements(days, cluster)) == INITIAL_DIGESTS[(days, cluster)]


def run_sql(operations):
    for op in operations:
        if isinstance(op, migrations.SeparateDatabaseAndState):
            yield from run_sql(op.database_operations)
        elif isinstance(op, migrations.RunSQL):
            yield op.sql


def migration_statements(**overrides):
    """Every statement the viewing migrations run, in order, with settings overridden."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    (leaf,) = [key for key in loader.graph.leaf_nodes() if key[0] == "viewing"]
    modules = [
        importlib.import_module(f"viewing.migrations.{name}")
        for app, name in loader.graph.forwards_plan(leaf) if app == "viewing"
    ]
    out = []
    try:
        with override_settings(**overrides):
            for module in modules:
                out += run_sql(importlib.reload(module).Migration.operations)
    finally:
        for module in modules:
            importlib.reload(module)  # back to the real settings for the rest of the session
    return out


@pytest.mark.parametrize("cluster", [None, "analytics_cluster"])
def test_the_migrations_create_what_the_registry_declares(cluster):
    ran = migration_statements(RETENTION_DAYS=365, CLICKHOUSE_CLUSTER=cluster)
    altered = set(re.findall(r"^ALTER TABLE (\w+)", "\n".join(ran), re.M))
    created = re.findall(r"^CREATE (?:TABLE|MATERIALIZED VIEW) (\w+)", "\n".join(ran), re.M)
    dropped = set(re.findall(r"^DROP (?:TABLE|VIEW) (\w+)", "\n".join(ran), re.M))
    declared = [sql for sql, _ in ddl.statements(365, cluster)]
    assert sorted(set(created) - dropped) == sorted(
        re.match(r"CREATE (?:TABLE|MATERIALIZED VIEW) (\w+)", s).group(1) for s in declared
    )
    # A declaration that differs from the statement that created its object needs a later
    # migration that alters the object (the database-level comparison in test_schema.py
    # checks that the result is the same).
    for sql in declared:
        name = re.match(r"CREATE (?:TABLE|MATERIALIZED VIEW) (\w+)", sql).group(1)
        assert sql in ran or name in altered, f"{name} is declared otherwise than migrated: add a migration"


def test_the_migration_state_matches_the_models(ch):
    # makemigrations --check exits non-zero when the models and the migration state differ.
    call_command("makemigrations", "viewing", "--check", "--dry-run", verbosity=0)


def unwrapped(expression):
    """An expression without parentheses around the whole of it (the ORM adds them)."""
    while expression.startswith("(") and expression.endswith(")"):
        depth = 0
        for i, ch in enumerate(expression):
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth == 0 and i < len(expression) - 1:
                return expression
        expression = expression[1:-1]
    return expression


def top_level(expressions):
    """A key's comma-separated expressions (commas inside function calls kept)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(expressions):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(expressions[start:i].strip())
            start = i + 1
    return [*parts, expressions[start:].strip()]


def table_shape(database, table):
    ((engine, partition_key, sorting_key, primary_key),) = query(
        "SELECT engine, partition_key, sorting_key, primary_key FROM system.tables "
        "WHERE database = %(db)s AND name = %(t)s", {"db": database, "t": table},
    )
    columns = query(
        "SELECT name, type, default_expression FROM system.columns WHERE database = %(db)s AND table = %(t)s "
        "ORDER BY position", {"db": database, "t": table},
    )
    indexes = query(
        "SELECT name, expr, type_full, granularity FROM system.data_skipping_indices "
        "WHERE database = %(db)s AND table = %(t)s ORDER BY name", {"db": database, "t": table},
    )
    keys = [[unwrapped(e) for e in top_level(k)] for k in (partition_key, sorting_key, primary_key)]
    indexes = [(name, unwrapped(expr), *rest) for name, expr, *rest in indexes]
    return engine, keys, columns, indexes


@pytest.fixture
def scratch(ch):
    database = "registry_scratch"
    with connections["clickhouse"].cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {database}")
        cursor.execute(f"CREATE DATABASE {database}")
    yield database
    with connections["clickhouse"].cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {database}")


def test_the_model_meta_says_what_the_ddl_says(ch, scratch):
    # The ORM's own DDL for the model (engine, keys, indexes; it has no TTL) creates the same
    # table as the registry, whose DDL is what migrate runs.
    connection = connections["clickhouse"]
    with connection.schema_editor(collect_sql=True) as editor:
        editor.create_model(ViewingEvent)
    with connection.cursor() as cursor:
        for sql in editor.collected_sql:
            cursor.execute(sql.replace('TABLE "viewing_events"', f'TABLE {scratch}."viewing_events"').rstrip(";"))
    migrated = connection.settings_dict["NAME"]
    assert table_shape(scratch, "viewing_events") == table_shape(migrated, "viewing_events")


def in_database(database, statements):
    """Runs statements with `database` as the current one (one cursor: USE is per session)."""
    with connections["clickhouse"].cursor() as cursor:
        cursor.execute(f"USE {database}")
        try:
            for sql in statements:
                cursor.execute(sql)
        finally:
            cursor.execute(f"USE {connections['clickhouse'].settings_dict['NAME']}")


def test_a_written_migration_creates_and_backfills_a_table(scratch):
    # A database that holds events before the aggregate exists: the raw table only.
    in_database(scratch, [sql for sql, _ in ddl.VIEWING_EVENTS.create(365)])
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    rows = [
        (uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), kind, 10, now - timedelta(days=d), None, "{}", now)
        for d in range(3) for kind in ("start", "start", "finish")
    ]
    with connections["clickhouse"].cursor() as cursor:
        cursor.executemany(f"INSERT INTO {scratch}.viewing_events VALUES", rows)
    frozen = ddl_migrations.frozen(["events_daily", "events_daily_mv"], cluster=False)
    assert [reverse for _, reverse in frozen] == ["DROP TABLE events_daily", "DROP VIEW events_daily_mv", None]
    in_database(scratch, [sql for sql, _ in ddl_migrations.fill(frozen, 365, None)])
    counted = f"SELECT day, sum(events), sum(starts), sum(finishes), uniqMerge(users) FROM {scratch}.events_daily GROUP BY day ORDER BY day"
    assert query(counted) == [((now - timedelta(days=d)).date(), 3, 2, 1, 3) for d in (2, 1, 0)]
    # From then on the view feeds it.
    with connections["clickhouse"].cursor() as cursor:
        cursor.executemany(f"INSERT INTO {scratch}.viewing_events VALUES", rows[:3])
    assert query(counted)[-1] == (now.date(), 6, 4, 2, 3)  # the same three users again


def test_the_migration_writer_freezes_sql_and_chains_on_the_latest(tmp_path):
    (tmp_path / "0001_initial.py").write_text("")
    (tmp_path / "0007_other.py").write_text("")
    path = ddl_migrations.write_migration(["trends_hourly", "trends_hourly_mv"], "hourly", tmp_path)
    assert path.name == "0008_hourly.py"
    namespace = {}
    with override_settings(RETENTION_DAYS=30, CLICKHOUSE_CLUSTER="c2"):
        exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 (our generated file)
    migration = namespace["Migration"]
    assert migration.dependencies == [("viewing", "0007_other")]
    assert namespace["SINGLE_NODE"] == ddl_migrations.frozen(["trends_hourly", "trends_hourly_mv"], cluster=False)
    sql = [op.sql for op in migration.operations]
    assert sql[:2] == [s for s, _ in ddl.TRENDS_HOURLY.create_on_cluster(30, "c2")]
    assert sql[-1].startswith("INSERT INTO trends_hourly_local\n")
    assert "FROM cluster(c2, currentDatabase(), viewing_events_local)" in sql[-1]
    with pytest.raises(ValueError, match="--name"):
        ddl_migrations.write_migration(["trends_hourly"], "Bad Name", tmp_path)


def test_the_migration_state_has_the_models_engine_and_indexes():
    # makemigrations does not compare a ClickHouse engine; this does (the state's, the model's).
    state = MigrationLoader(None, ignore_no_migrations=True).project_state()
    migrated = state.apps.get_model("viewing", "ViewingEvent")._meta
    meta = ViewingEvent._meta
    assert migrated.engine.deconstruct() == meta.engine.deconstruct()
    assert [i.deconstruct() for i in migrated.indexes] == [i.deconstruct() for i in meta.indexes]
    assert [(f.name, f.deconstruct()[1:]) for f in migrated.fields] == [(f.name, f.deconstruct()[1:]) for f in meta.fields]
