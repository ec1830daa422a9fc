"""ClickHouse DDL: the raw table, the de-duplication index, the aggregate tables and the
materialized views that feed them.

Each statement is a named constant; migrations are thin lists of them (with reverse SQL), and
`python -m viewing.ddl > clickhouse/schema.sql` writes them out for clickhouse-client users
(tests/viewing/test_schema.py checks that file against what `migrate` creates).

Why the aggregates look like this:
- Counts are SimpleAggregateFunction(sum, UInt64): merging them is an addition, and reads
  still GROUP BY because background merges are eventual.
- Distinct counts are AggregateFunction(uniq, UUID) states, taken at the coarsest grain that
  answers the question (per day for trends, per hour only for peak hours). `uniq` is exact up
  to 65,536 distinct values (barring a 32-bit hash collision) and within ~1 % above; a
  SummingMergeTree over uniq() would double-count a viewer present in two parts or days.
- Every table is keyed so the endpoint's WHERE is a prefix of its ORDER BY.
"""

import re

# Raw events (the ORM model viewing.models.ViewingEvent). Sort key: the analytics read the
# aggregate tables below, so the raw table serves the admin, which pages and filters by date,
# and one user's rows of a day. A day prefix prunes both to the days concerned; user_id next
# keeps a user's events of a day in a granule or two. Bloom filters let exact UUID searches
# (admin) skip granules outside the sort key. De-duplication reads event_ids, not this table.
VIEWING_EVENTS = """
CREATE TABLE viewing_events
(
    id UUID,
    user_id UUID,
    movie_id UUID,
    event_type LowCardinality(String),
    position_seconds UInt32,
    event_time DateTime('UTC'),
    session_id Nullable(UUID),
    metadata String,
    created_at DateTime('UTC'),
    INDEX idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_movie_id movie_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (toDate(event_time), user_id, event_time)
TTL event_time + INTERVAL {days} DAY
"""

# Ids of every stored event, sorted by id in small granules: a batch of n ids reads about n
# granules of 256 rows whatever the size of the table, so de-duplication costs the same at
# 1M and 1B events. Not partitioned: a look-up by id alone would otherwise search every
# partition. Fed by its own materialized view so it can never miss an insert.
EVENT_IDS = """
CREATE TABLE event_ids
(
    id UUID,
    event_time DateTime('UTC')
)
ENGINE = MergeTree
ORDER BY id
TTL event_time + INTERVAL {days} DAY
SETTINGS index_granularity = 256
"""
EVENT_IDS_MV = """
CREATE MATERIALIZED VIEW event_ids_mv TO event_ids AS
SELECT id, event_time
FROM viewing_events
"""

# Popular content: per movie per day. The endpoint reads a range of days and groups by movie.
POPULAR_CONTENT_DAILY = """
CREATE TABLE popular_content_daily
(
    day Date,
    movie_id UUID,
    starts SimpleAggregateFunction(sum, UInt64),
    finishes SimpleAggregateFunction(sum, UInt64),
    viewers AggregateFunction(uniq, UUID)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, movie_id)
TTL day + INTERVAL {days} DAY
"""
POPULAR_CONTENT_MV = """
CREATE MATERIALIZED VIEW popular_content_mv TO popular_content_daily AS
SELECT
    toDate(event_time) AS day,
    movie_id,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    uniqState(user_id) AS viewers
FROM viewing_events
GROUP BY day, movie_id
"""

# User stats: per user per day per movie, so one user's window is one contiguous key range and
# the most-watched movie (most starts) comes from the same rows.
USER_STATS_DAILY = """
CREATE TABLE user_stats_daily
(
    user_id UUID,
    day Date,
    movie_id UUID,
    events SimpleAggregateFunction(sum, UInt64),
    starts SimpleAggregateFunction(sum, UInt64),
    finishes SimpleAggregateFunction(sum, UInt64),
    watch_seconds SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (user_id, day, movie_id)
TTL day + INTERVAL {days} DAY
"""
USER_STATS_MV = """
CREATE MATERIALIZED VIEW user_stats_mv TO user_stats_daily AS
SELECT
    user_id,
    toDate(event_time) AS day,
    movie_id,
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    sumIf(toUInt64(position_seconds), event_type = 'finish') AS watch_seconds
FROM viewing_events
GROUP BY user_id, day, movie_id
"""

# Trends: one row per day; distinct users and movies of a day come from one merged state.
EVENTS_DAILY = """
CREATE TABLE events_daily
(
    day Date,
    events SimpleAggregateFunction(sum, UInt64),
    starts SimpleAggregateFunction(sum, UInt64),
    finishes SimpleAggregateFunction(sum, UInt64),
    users AggregateFunction(uniq, UUID),
    movies AggregateFunction(uniq, UUID)
)
ENGINE = AggregatingMergeTree
ORDER BY day
TTL day + INTERVAL {days} DAY
"""
EVENTS_DAILY_MV = """
CREATE MATERIALIZED VIEW events_daily_mv TO events_daily AS
SELECT
    toDate(event_time) AS day,
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    uniqState(user_id) AS users,
    uniqState(movie_id) AS movies
FROM viewing_events
GROUP BY day
"""

# Peak hours: one row per UTC hour; the endpoint folds the window's hours onto 0..23, merging
# the user states of the same hour of day across days.
EVENTS_HOURLY = """
CREATE TABLE events_hourly
(
    hour DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64),
    users AggregateFunction(uniq, UUID)
)
ENGINE = AggregatingMergeTree
ORDER BY hour
TTL hour + INTERVAL {days} DAY
"""
EVENTS_HOURLY_MV = """
CREATE MATERIALIZED VIEW events_hourly_mv TO events_hourly AS
SELECT
    toStartOfHour(event_time) AS hour,
    count() AS events,
    uniqState(user_id) AS users
FROM viewing_events
GROUP BY hour
"""

# Viewers erased on request (viewing/erasure.py): the write path drops their later events
# (viewing/suppression.py). Sorted by user, so the look-up of a batch's users reads a granule
# or two per user; never expires (no TTL): an erased viewer stays erased. Replacing: erasing
# a viewer twice leaves one row once merged (the look-up reads DISTINCT meanwhile).
SUPPRESSED_USERS = """
CREATE TABLE suppressed_users
(
    user_id UUID,
    suppressed_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY user_id
"""

# (statement, reverse) per ClickHouse migration of the viewing app, each in creation order
# (a target table before the view that feeds it). A migration runs its own list; a fresh
# schema (schema.sql) is all of them in order.
INITIAL = [
    (VIEWING_EVENTS, "DROP TABLE viewing_events"),
    (EVENT_IDS, "DROP TABLE event_ids"),
    (EVENT_IDS_MV, "DROP VIEW event_ids_mv"),
    (POPULAR_CONTENT_DAILY, "DROP TABLE popular_content_daily"),
    (POPULAR_CONTENT_MV, "DROP VIEW popular_content_mv"),
    (USER_STATS_DAILY, "DROP TABLE user_stats_daily"),
    (USER_STATS_MV, "DROP VIEW user_stats_mv"),
    (EVENTS_DAILY, "DROP TABLE events_daily"),
    (EVENTS_DAILY_MV, "DROP VIEW events_daily_mv"),
    (EVENTS_HOURLY, "DROP TABLE events_hourly"),
    (EVENTS_HOURLY_MV, "DROP VIEW events_hourly_mv"),
]
SUPPRESSION = [(SUPPRESSED_USERS, "DROP TABLE suppressed_users")]
STATEMENTS = INITIAL + SUPPRESSION

# Tables holding data (what tests truncate and what a reset clears), views excluded.
DATA_TABLES = [
    "viewing_events",
    "event_ids",
    "popular_content_daily",
    "user_stats_daily",
    "events_daily",
    "events_hourly",
    "suppressed_users",
]


def render(statement, retention_days):
    """A statement with the retention period (settings.RETENTION_DAYS) filled in."""
    return statement.strip().format(days=int(retention_days))


def statements(retention_days, cluster=None, group=None):
    """(statement, reverse) pairs `migrate` runs: single-node, or for CLICKHOUSE_CLUSTER.
    `group`: one migration's list (INITIAL, SUPPRESSION); default, the whole schema."""
    group = STATEMENTS if group is None else group
    if not cluster:
        return [(render(sql, retention_days), reverse) for sql, reverse in group]
    return cluster_statements(retention_days, cluster, group)


# --- Cluster mode -----------------------------------------------------------------------------
# With CLICKHOUSE_CLUSTER set, every table above becomes a Replicated*MergeTree `<name>_local`
# on each node and a Distributed `<name>` over them with the original name, so the application
# reads and writes the same names on one node or many. Raw events are sharded by user: one
# user's events (and so their per-user aggregates) live on one shard. The views run on each
# node's local tables; the aggregates are written only by them, so their Distributed tables
# need no sharding key. The single-node statements are transformed, not restated, so the two
# modes cannot drift apart.
SHARDING_KEYS = {"viewing_events": "cityHash64(user_id)", "suppressed_users": "cityHash64(user_id)"}
_CREATE_TABLE = re.compile(r"^CREATE TABLE (\w+)\n")
_ENGINE = re.compile(r"^ENGINE = (\w*MergeTree)$", re.MULTILINE)
_VIEW = re.compile(r"^CREATE MATERIALIZED VIEW (\w+) TO (\w+) AS")
_FROM_RAW = re.compile(r"^FROM viewing_events$", re.MULTILINE)


def _ident(name):
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name or ""):
        raise ValueError(f"CLICKHOUSE_CLUSTER must be a plain identifier, got {name!r}")
    return name


def cluster_statements(retention_days, cluster, group=None):
    cluster = _ident(cluster)
    out = []
    for sql, _reverse in STATEMENTS if group is None else group:
        sql = render(sql, retention_days)
        table = _CREATE_TABLE.match(sql)
        if table:
            name = table.group(1)
            local = f"{name}_local"
            replicated = _ENGINE.sub(
                lambda m: f"ENGINE = Replicated{m.group(1)}("
                f"'/clickhouse/tables/{{shard}}/{{database}}/{local}', '{{replica}}')",  # noqa: B023 (called at once, inside the loop)
                _CREATE_TABLE.sub(f"CREATE TABLE {local} ON CLUSTER {cluster}\n", sql),
            )
            key = f", {SHARDING_KEYS[name]}" if name in SHARDING_KEYS else ""
            out.append((replicated, f"DROP TABLE {local} ON CLUSTER {cluster} SYNC"))
            out.append((
                f"CREATE TABLE {name} ON CLUSTER {cluster} AS {local}\n"
                f"ENGINE = Distributed({cluster}, currentDatabase(), {local}{key})",
                f"DROP TABLE {name} ON CLUSTER {cluster} SYNC",
            ))
            continue
        view = _VIEW.match(sql)
        name, target = view.group(1), view.group(2)
        sql = _VIEW.sub(f"CREATE MATERIALIZED VIEW {name} ON CLUSTER {cluster} TO {target}_local AS", sql)
        out.append((_FROM_RAW.sub("FROM viewing_events_local", sql), f"DROP VIEW {name} ON CLUSTER {cluster} SYNC"))
    return out


def schema_sql(retention_days=365, cluster=None):
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
    import argparse

    parser = argparse.ArgumentParser(description="Print the ClickHouse schema as SQL.")
    parser.add_argument("--cluster", help="the DDL of cluster mode for this cluster name")
    print(schema_sql(cluster=parser.parse_args().cluster), end="")
