"""The schema registry (viewing/ddl.py, viewing/ddl_objects.py): what it declares, and the DDL
it renders on one node and on a cluster, checked by a parser of its own."""

import re
from pathlib import Path

import pytest
from django.conf import settings

from viewing import ddl
from viewing.ddl_objects import AGGREGATING_MERGE_TREE, Engine, MaterializedView, Table

CLUSTER = "analytics_cluster"


def cluster_problems(statements, cluster=CLUSTER):
    """What breaks the cluster layout in a list of statements, read as text: every
    MergeTree-family table replicated as `<name>_local`, a Distributed `<name>` over each, every
    view from a local table into a local replicated table, everything ON CLUSTER."""
    problems, local_engines, distributed = [], {}, {}
    for sql in statements:
        if f" ON CLUSTER {cluster}" not in sql.split("\n", 1)[0]:
            problems.append(f"not ON CLUSTER: {sql.splitlines()[0]}")
        table = re.match(r"CREATE TABLE (\w+) ON CLUSTER \w+\n\(.*?\n\)\nENGINE = (\w+)(\(?)", sql, re.S)
        dist = re.match(r"CREATE TABLE (\w+) ON CLUSTER \w+ AS (\w+)\nENGINE = Distributed\((\w+), currentDatabase\(\), (\w+)", sql)
        view = re.match(r"CREATE MATERIALIZED VIEW (\w+) ON CLUSTER \w+ TO (\w+) AS\n.*\nFROM (\w+)", sql, re.S)
        if table:
            name, engine, paren = table.groups()
            if "MergeTree" in engine and not (engine.startswith("Replicated") and paren):
                problems.append(f"{name}: {engine} is not replicated")
            elif engine.startswith("Replicated"):
                path = re.search(r"ENGINE = \w+\('([^']*)', '\{replica\}'", sql)
                if not path or path.group(1) != f"/clickhouse/tables/{{shard}}/{{database}}/{name}":
                    problems.append(f"{name}: replica path is not per shard and table")
            if not name.endswith("_local"):
                problems.append(f"{name}: a replicated table is named <name>_local")
            local_engines[name] = engine
        elif dist:
            name, like, on_cluster, under = dist.groups()
            if like != under or under != f"{name}_local" or on_cluster != cluster:
                problems.append(f"{name}: Distributed over {under} on {on_cluster}")
            distributed[name] = under
        elif view:
            name, target, source = view.groups()
            if not target.endswith("_local") or not local_engines.get(target, "").startswith("Replicated"):
                problems.append(f"{name}: writes {target}, not a replicated local table created before it")
            if source not in local_engines:
                problems.append(f"{name}: reads {source}, not a local table")
        else:
            problems.append(f"unrecognised statement: {sql.splitlines()[0]}")
    for local in local_engines:
        if local.removesuffix("_local") not in distributed:
            problems.append(f"{local}: no Distributed table in front")
    return problems


def test_cluster_mode_replicates_every_table_behind_a_distributed_one():
    statements = [sql for sql, _ in ddl.statements(365, CLUSTER)]
    assert cluster_problems(statements) == []
    tables = re.findall(r"^CREATE TABLE (\w+) ON CLUSTER \w+ AS", "\n".join(statements), re.M)
    assert sorted(tables) == sorted(ddl.DATA_TABLES)
    # Each view targets the local table of the table it is declared to feed.
    for view in ddl.VIEWS:
        (sql,) = [s for s in statements if s.startswith(f"CREATE MATERIALIZED VIEW {view.name} ")]
        assert f" TO {view.target.name}_local AS\n" in sql
        assert sql.endswith(f"FROM {view.source.name}_local") or f"FROM {view.source.name}_local\n" in sql
    # Raw events are sharded by user, so a user's events stay on one shard.
    assert (
        "CREATE TABLE viewing_events ON CLUSTER analytics_cluster AS viewing_events_local\n"
        "ENGINE = Distributed(analytics_cluster, currentDatabase(), viewing_events_local, cityHash64(user_id))"
    ) in statements


def test_the_cluster_check_catches_an_unreplicated_table():
    # The checker above fails on the shapes that used to slip through a rewrite of finished SQL.
    good = [sql for sql, _ in ddl.statements(365, CLUSTER)]
    for spelling in ("MergeTree()", "MergeTree", "AggregatingMergeTree()", "ReplacingMergeTree(version)"):
        bad = [re.sub(r"ENGINE = ReplicatedMergeTree\([^\n]*\)", f"ENGINE = {spelling}", good[0]), *good[1:]]
        assert any("is not replicated" in p for p in cluster_problems(bad)), spelling
    no_distributed = [s for s in good if not s.startswith("CREATE TABLE events_daily ON")]
    assert "events_daily_local: no Distributed table in front" in cluster_problems(no_distributed)
    wrong_target = [s.replace("TO trends_hourly_local AS", "TO trends_hourly AS") for s in good]
    assert any(p.startswith("trends_hourly_mv: writes trends_hourly,") for p in cluster_problems(wrong_target))


@pytest.mark.parametrize("family", sorted(Engine.FAMILIES))
def test_every_engine_of_the_family_is_replicated_on_a_cluster(family):
    params = ("sign",) if "Collapsing" in family else ()
    params += ("version",) if family == "VersionedCollapsingMergeTree" else ()
    table = Table(
        name="t", kind="aggregate", columns=(("day", "Date"), ("sign", "Int8"), ("version", "UInt64")),
        engine=Engine(family, params), order_by="day", ttl_column="day",
    )
    raw = ddl.VIEWING_EVENTS
    view = MaterializedView(name="t_mv", target=table, source=raw, select="SELECT toDate(event_time) AS day, 1 AS sign, 1 AS version\nFROM {source}")
    statements = [sql for obj in (raw, table, view) for sql, _ in obj.create_on_cluster(365, CLUSTER)]
    assert cluster_problems(statements) == []
    assert f"ENGINE = Replicated{family}('/clickhouse/tables/{{shard}}/{{database}}/t_local', '{{replica}}'" in statements[2]


@pytest.mark.parametrize("spelling", ["MergeTree()", "mergetree", "ReplicatedMergeTree", "Memory", "Log", ""])
def test_an_engine_is_declared_by_family_name_only(spelling):
    with pytest.raises(ValueError, match="declare one of"):
        Engine(spelling)


def test_the_registry_refuses_what_it_cannot_render():
    with pytest.raises(ValueError, match="TTL column"):
        Table(name="t", kind="raw", columns=(("a", "UInt8"),), engine=AGGREGATING_MERGE_TREE, order_by="a", ttl_column="b")
    with pytest.raises(ValueError, match="identifier"):
        Table(name="t; DROP TABLE x", kind="raw", columns=(("a", "UInt8"),), engine=AGGREGATING_MERGE_TREE, order_by="a")
    with pytest.raises(ValueError, match="FROM \\{source\\}"):
        MaterializedView(name="v", target=ddl.EVENTS_DAILY, source=ddl.VIEWING_EVENTS, select="SELECT 1 FROM viewing_events")
    with pytest.raises(ValueError, match="CLICKHOUSE_CLUSTER"):
        ddl.statements(365, "x; DROP TABLE y")
    with pytest.raises(KeyError, match="no_such_table"):
        ddl.objects(["no_such_table"])


def test_a_table_of_recent_rows_expires_after_its_own_interval():
    recent = Table(
        name="recent", kind="raw", columns=(("t", "DateTime('UTC')"),), engine=Engine("MergeTree"),
        order_by="t", ttl_column="t", ttl_interval="INTERVAL 2 HOUR",
    )
    ((sql, _),) = recent.create(30)
    assert sql.endswith("\nTTL t + INTERVAL 2 HOUR")
    assert recent.create_on_cluster(30, CLUSTER)[0][0].endswith("\nTTL t + INTERVAL 2 HOUR")
    with pytest.raises(ValueError, match="RETENTION_DAYS"):
        recent.alter_ttl(30)
    for bad in ("2 HOUR", "INTERVAL 2 HOUR; DROP TABLE x", "INTERVAL 0 HOUR"):
        with pytest.raises(ValueError, match="ttl_interval"):
            Table(name="r", kind="raw", columns=(("t", "DateTime"),), engine=Engine("MergeTree"), order_by="t", ttl_column="t", ttl_interval=bad)


def test_single_node_statements_create_each_object_once_in_order():
    statements = [sql for sql, _ in ddl.statements(365)]
    created = [re.match(r"CREATE (?:TABLE|MATERIALIZED VIEW) (\w+)", s).group(1) for s in statements]
    assert created == [o.name for o in ddl.OBJECTS]
    for view in ddl.VIEWS:
        assert created.index(view.target.name) < created.index(view.name)
        assert created.index(view.source.name) < created.index(view.name)
    with_ttl = [re.match(r"CREATE TABLE (\w+)", s).group(1) for s in statements if "\nTTL " in s]
    assert with_ttl == [t.name for t in ddl.TABLES if t.ttl_column]
    assert [n for n in with_ttl if "INTERVAL 365 DAY" in statements[created.index(n)]] == list(ddl.TTL_COLUMNS)
    fixed = tuple(f"CREATE TABLE {t.name}\n" for t in ddl.TABLES if t.ttl_interval)  # recent rows only
    assert fixed and all("INTERVAL 30 DAY" in s for s, _ in ddl.statements(30) if "TTL" in s and not s.startswith(fixed))


def test_derived_lists_follow_the_declarations():
    assert ddl.DATA_TABLES == [o.name for o in ddl.OBJECTS if isinstance(o, Table)]
    assert ddl.TTL_COLUMNS.items() >= {
        "viewing_events": "event_time", "event_ids": "event_time", "popular_content_daily": "day",
        "user_stats_daily": "day", "events_daily": "day", "trends_hourly": "hour",
    }.items()
    from bench.phases import TABLES

    assert TABLES == ddl.DATA_TABLES
    assert {t.kind for t in ddl.TABLES} == {"raw", "lookup", "aggregate"}
    # An erased viewer stays erased: the suppression list never expires.
    assert "suppressed_users" in ddl.DATA_TABLES and "suppressed_users" not in ddl.TTL_COLUMNS


def test_retention_alters_the_local_tables_on_a_cluster():
    assert ddl.EVENTS_DAILY.alter_ttl(30) == "ALTER TABLE events_daily MODIFY TTL day + INTERVAL 30 DAY"
    assert ddl.EVENTS_DAILY.alter_ttl(30, CLUSTER) == (
        "ALTER TABLE events_daily_local ON CLUSTER analytics_cluster MODIFY TTL day + INTERVAL 30 DAY"
    )


@pytest.mark.parametrize(("name", "cluster"), [("schema.sql", None), ("schema-cluster.sql", CLUSTER)])
def test_the_schema_files_are_the_generated_ones(name, cluster):
    on_disk = (Path(settings.BASE_DIR) / "clickhouse" / name).read_text()
    command = f"python -m viewing.ddl{' --cluster ' + cluster if cluster else ''} > clickhouse/{name}"
    assert on_disk == ddl.schema_sql(cluster=cluster), f"stale: run `{command}`"
