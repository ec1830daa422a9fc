"""The ClickHouse schema registry: every table and materialized view of the service, declared
once. Everything else derives from it: the CREATE statements (one node and cluster), the data
tables tests empty (`DATA_TABLES`), the retention TTLs (viewing/retention.py), the benchmark's
table list (bench/phases.py), clickhouse/schema.sql and schema-cluster.sql, and the SQL frozen
into each migration.

Adding a table (say an aggregate fed by a view), in one step of four moves:
1. Declare it below: a `Table` (name, kind, columns, engine, ORDER BY, PARTITION BY, TTL
   column — expiring after RETENTION_DAYS, or after a fixed `ttl_interval` for a table of
   recent rows —, settings, indexes, cluster shard key) and its `MaterializedView` (target,
   source, SELECT reading `FROM {source}`), with a comment on why the sort key is what the
   reads need; add both to `OBJECTS`, the table before its view.
2. `python -m viewing.ddl migration views_daily views_daily_mv --name views_daily` writes
   `viewing/migrations/000N_views_daily.py`: the CREATE statements frozen as SQL text (one node
   and cluster; `{days}` and `{cluster}` filled in when it runs), their DROPs as the reverse, and
   for each view an INSERT ... SELECT that backfills its table from the raw events already
   stored (docs/architecture.md, "Adding a table", says when a backfill is exact).
3. `python -m viewing.ddl > clickhouse/schema.sql` and
   `python -m viewing.ddl --cluster analytics_cluster > clickhouse/schema-cluster.sql`.
4. `pytest tests/viewing/test_ddl.py tests/viewing/test_schema.py tests/viewing/test_migrations.py`:
   they fail if the migrations and this registry create different databases, if a schema
   file is stale, or if the cluster layout is broken.
Changing a declared table later (a setting, a column): edit it here, and write a migration
that ALTERs existing databases, with the same SINGLE_NODE / CLUSTER lists and
`ddl_migrations.operations()` as a written one (on a cluster: `ALTER TABLE <name>_local ON
CLUSTER {cluster} ...`). Released migrations are never edited; the tests catch a declaration
that no migration made.

Why the aggregates look like this:
- Counts are SimpleAggregateFunction(sum, UInt64): merging them is an addition, and reads
  still GROUP BY because background merges are eventual.
- Distinct counts are AggregateFunction(uniq, UUID) states, taken at the coarsest grain that
  answers the question (per day for trends, per hour only for peak hours). `uniq` is exact up
  to 65,536 distinct values (barring a 32-bit hash collision) and within ~1 % above; a
  SummingMergeTree over uniq() would double-count a viewer present in two parts or days.
- Every table is keyed so the endpoint's WHERE is a prefix of its ORDER BY.
"""

from __future__ import annotations

from viewing.ddl_engagement import (
    RECENT_EVENTS,
    RECENT_EVENTS_SELECT,
    VIEW_SEGMENTS,
    VIEW_SEGMENTS_SELECT,
)
from viewing.ddl_objects import (
    AGGREGATING_MERGE_TREE,
    INSERT_DEDUPLICATION,
    MERGE_TREE,
    Engine,
    MaterializedView,
    SchemaObject,
    Table,
    identifier,
    render,
)
from viewing.ddl_time_zones import (
    ACTIVE_SPAN_DAILY,
    ACTIVE_SPAN_DAILY_SELECT,
    EVENTS_QUARTER_HOURLY,
    EVENTS_QUARTER_HOURLY_SELECT,
    TRENDS_HOURLY,
    TRENDS_HOURLY_SELECT,
)

UUID = "UUID"
COUNT = "SimpleAggregateFunction(sum, UInt64)"
UNIQ = "AggregateFunction(uniq, UUID)"

# Raw events (the ORM model viewing.models.ViewingEvent). Sort key: the analytics read the
# aggregate tables below, so the raw table serves the admin, which pages and filters by date,
# and one user's rows of a day. A day prefix prunes both to the days concerned; user_id next
# keeps a user's events of a day in a granule or two. Bloom filters let exact UUID searches
# (admin) skip granules outside the sort key. De-duplication reads event_ids, not this table.
# On a cluster, sharded by user: one user's events (and so their per-user aggregates) live on
# one shard.
VIEWING_EVENTS = Table(
    name="viewing_events",
    kind="raw",
    columns=(
        ("id", UUID),
        ("user_id", UUID),
        ("movie_id", UUID),
        ("event_type", "LowCardinality(String)"),
        ("position_seconds", "UInt32"),
        ("event_time", "DateTime('UTC')"),
        ("session_id", "Nullable(UUID)"),
        ("metadata", "String"),
        ("created_at", "DateTime('UTC')"),
    ),
    indexes=(
        "idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 1",
        "idx_movie_id movie_id TYPE bloom_filter(0.01) GRANULARITY 1",
        "idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 1",
    ),
    engine=MERGE_TREE,
    partition_by="toYYYYMM(event_time)",
    order_by="(toDate(event_time), user_id, event_time)",
    ttl_column="event_time",
    settings=(INSERT_DEDUPLICATION,),
    shard_key="cityHash64(user_id)",
)

# Ids of every stored event, sorted by id in small granules: a batch of n ids reads about n
# granules of 256 rows whatever the size of the table, so de-duplication costs the same at
# 1M and 1B events. Not partitioned: a look-up by id alone would otherwise search every
# partition. Fed by its own materialized view so it can never miss an insert.
EVENT_IDS = Table(
    name="event_ids",
    kind="lookup",
    columns=(("id", UUID), ("event_time", "DateTime('UTC')")),
    engine=MERGE_TREE,
    order_by="id",
    ttl_column="event_time",
    settings=(("index_granularity", 256), INSERT_DEDUPLICATION),
)
EVENT_IDS_MV = MaterializedView(
    name="event_ids_mv",
    target=EVENT_IDS,
    source=VIEWING_EVENTS,
    select="""
SELECT id, event_time
FROM {source}
""",
)

# Popular content: per movie per day. The endpoint reads a range of days and groups by movie.
POPULAR_CONTENT_DAILY = Table(
    name="popular_content_daily",
    kind="aggregate",
    columns=(
        ("day", "Date"),
        ("movie_id", UUID),
        ("starts", COUNT),
        ("finishes", COUNT),
        ("viewers", UNIQ),
    ),
    engine=AGGREGATING_MERGE_TREE,
    partition_by="toYYYYMM(day)",
    order_by="(day, movie_id)",
    ttl_column="day",
    settings=(INSERT_DEDUPLICATION,),
)
POPULAR_CONTENT_MV = MaterializedView(
    name="popular_content_mv",
    target=POPULAR_CONTENT_DAILY,
    source=VIEWING_EVENTS,
    select="""
SELECT
    toDate(event_time) AS day,
    movie_id,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    uniqState(user_id) AS viewers
FROM {source}
GROUP BY day, movie_id
""",
)

# User stats: per user per day per movie, so one user's window is one contiguous key range and
# the most-watched movie (most starts) comes from the same rows.
USER_STATS_DAILY = Table(
    name="user_stats_daily",
    kind="aggregate",
    columns=(
        ("user_id", UUID),
        ("day", "Date"),
        ("movie_id", UUID),
        ("events", COUNT),
        ("starts", COUNT),
        ("finishes", COUNT),
        ("watch_seconds", COUNT),
    ),
    engine=AGGREGATING_MERGE_TREE,
    partition_by="toYYYYMM(day)",
    order_by="(user_id, day, movie_id)",
    ttl_column="day",
    settings=(INSERT_DEDUPLICATION,),
)
USER_STATS_MV = MaterializedView(
    name="user_stats_mv",
    target=USER_STATS_DAILY,
    source=VIEWING_EVENTS,
    select="""
SELECT
    user_id,
    toDate(event_time) AS day,
    movie_id,
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    sumIf(toUInt64(position_seconds), event_type = 'finish') AS watch_seconds
FROM {source}
GROUP BY user_id, day, movie_id
""",
)

# Trends: one row per day; distinct users and movies of a day come from one merged state.
EVENTS_DAILY = Table(
    name="events_daily",
    kind="aggregate",
    columns=(
        ("day", "Date"),
        ("events", COUNT),
        ("starts", COUNT),
        ("finishes", COUNT),
        ("users", UNIQ),
        ("movies", UNIQ),
    ),
    engine=AGGREGATING_MERGE_TREE,
    order_by="day",
    ttl_column="day",
    settings=(INSERT_DEDUPLICATION,),
)
EVENTS_DAILY_MV = MaterializedView(
    name="events_daily_mv",
    target=EVENTS_DAILY,
    source=VIEWING_EVENTS,
    select="""
SELECT
    toDate(event_time) AS day,
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    uniqState(user_id) AS users,
    uniqState(movie_id) AS movies
FROM {source}
GROUP BY day
""",
)

# Viewers erased on request (viewing/erasure.py): the write path drops their later events
# (viewing/suppression.py). Sorted by user, so the look-up of a batch's users reads a granule
# or two per user; never expires (no TTL): an erased viewer stays erased. Replacing: erasing
# a viewer twice leaves one row once merged (the look-up reads DISTINCT meanwhile).
SUPPRESSED_USERS = Table(
    name="suppressed_users",
    kind="lookup",
    columns=(("user_id", UUID), ("suppressed_at", "DateTime('UTC')")),
    engine=Engine("ReplacingMergeTree"),
    order_by="user_id",
    shard_key="cityHash64(user_id)",
)

# --- Viewing engagement: tables and SELECTs in viewing/ddl_engagement.py ----------------------
VIEW_SEGMENTS_MV = MaterializedView(
    name="view_segments_mv", target=VIEW_SEGMENTS, source=VIEWING_EVENTS, select=VIEW_SEGMENTS_SELECT
)
RECENT_EVENTS_MV = MaterializedView(
    name="recent_events_mv", target=RECENT_EVENTS, source=VIEWING_EVENTS, select=RECENT_EVENTS_SELECT
)

# --- Time zones: tables and SELECTs in viewing/ddl_time_zones.py ------------------------------
EVENTS_QUARTER_HOURLY_MV = MaterializedView(
    name="events_quarter_hourly_mv", target=EVENTS_QUARTER_HOURLY, source=VIEWING_EVENTS,
    select=EVENTS_QUARTER_HOURLY_SELECT,
)
TRENDS_HOURLY_MV = MaterializedView(
    name="trends_hourly_mv", target=TRENDS_HOURLY, source=VIEWING_EVENTS, select=TRENDS_HOURLY_SELECT
)
ACTIVE_SPAN_DAILY_MV = MaterializedView(
    name="active_span_daily_mv", target=ACTIVE_SPAN_DAILY, source=VIEWING_EVENTS, select=ACTIVE_SPAN_DAILY_SELECT
)

# Every object in creation order: each table before the views that read or feed it.
OBJECTS: list[SchemaObject] = [
    VIEWING_EVENTS,
    EVENT_IDS,
    EVENT_IDS_MV,
    POPULAR_CONTENT_DAILY,
    POPULAR_CONTENT_MV,
    USER_STATS_DAILY,
    USER_STATS_MV,
    EVENTS_DAILY,
    EVENTS_DAILY_MV,
    SUPPRESSED_USERS,
    VIEW_SEGMENTS,
    VIEW_SEGMENTS_MV,
    RECENT_EVENTS,
    RECENT_EVENTS_MV,
    EVENTS_QUARTER_HOURLY,
    EVENTS_QUARTER_HOURLY_MV,
    TRENDS_HOURLY,
    TRENDS_HOURLY_MV,
    ACTIVE_SPAN_DAILY,
    ACTIVE_SPAN_DAILY_MV,
]

TABLES: list[Table] = [o for o in OBJECTS if isinstance(o, Table)]
VIEWS: list[MaterializedView] = [o for o in OBJECTS if isinstance(o, MaterializedView)]
BY_NAME: dict[str, SchemaObject] = {o.name: o for o in OBJECTS}

# Tables holding data (what tests truncate, what a reset clears, what the benchmark counts).
DATA_TABLES: list[str] = [t.name for t in TABLES]
# The time column each table expires by after RETENTION_DAYS (retention.py keeps them equal).
TTL_COLUMNS: dict[str, str] = {
    t.name: t.ttl_column for t in TABLES if t.ttl_column and t.ttl_interval is None
}


def _check_registry() -> None:
    if len(BY_NAME) != len(OBJECTS):
        raise ValueError("viewing/ddl.py: two objects share a name")
    seen: set[str] = set()
    for obj in OBJECTS:
        if isinstance(obj, MaterializedView):
            for table in (obj.source, obj.target):
                if BY_NAME.get(table.name) is not table or table.name not in seen:
                    raise ValueError(f"{obj.name}: {table.name} must be in OBJECTS before it")
        seen.add(obj.name)


_check_registry()


def objects(names: list[str] | None = None) -> list[SchemaObject]:
    """The named objects (all when None), in creation order."""
    if names is None:
        return list(OBJECTS)
    unknown = sorted(set(names) - set(BY_NAME))
    if unknown:
        raise KeyError(f"not declared in viewing/ddl.py: {', '.join(unknown)}")
    return [o for o in OBJECTS if o.name in names]


def statements(retention_days: int, cluster: str | None = None) -> list[tuple[str, str]]:
    """(statement, reverse) pairs creating the whole schema: single-node, or for
    CLICKHOUSE_CLUSTER (every table Replicated `<name>_local` + Distributed `<name>`)."""
    if cluster:
        identifier(cluster, "CLICKHOUSE_CLUSTER")
    return render(OBJECTS, retention_days, cluster)


def schema_sql(retention_days: int = 365, cluster: str | None = None) -> str:
    """The whole schema as one clickhouse-client script."""
    header = (
        "-- The ClickHouse schema of the viewing analytics service, for clickhouse-client.\n"
        f"-- Generated by `python -m viewing.ddl{' --cluster ' + cluster if cluster else ''}` "
        "from viewing/ddl.py: the statements\n"
        "-- `manage.py migrate` runs (RETENTION_DAYS=365"
        f"{', CLICKHOUSE_CLUSTER=' + cluster if cluster else ''}).\n"
        "--   clickhouse-client --multiquery --database analytics < this file\n"
    )
    return header + "".join(f"\n{sql};\n" for sql, _ in statements(retention_days, cluster))


if __name__ == "__main__":
    from viewing.ddl_migrations import main

    main()
