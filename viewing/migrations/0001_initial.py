"""The first ClickHouse schema: the raw table (model ViewingEvent), the de-duplication index,
the aggregate tables and their materialized views.

The model's state comes from CreateModel; the tables from the SQL below, frozen as
viewing/ddl.py generated it when this migration was written (a database migrated by it must
stay what it is: later changes of the schema are later migrations). `{days}` is
RETENTION_DAYS and `{cluster}` CLICKHOUSE_CLUSTER, filled in when the migration runs;
tests/viewing/test_migrations.py checks that the statements stay byte for byte the same.
"""

import re

import clickhouse_backend.models
import django.db.models.manager
from django.conf import settings
from django.db import migrations, models



SINGLE_NODE = [
    (
        """\
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
TTL event_time + INTERVAL {days} DAY""",
        'DROP TABLE viewing_events',
    ),
    (
        """\
CREATE TABLE event_ids
(
    id UUID,
    event_time DateTime('UTC')
)
ENGINE = MergeTree
ORDER BY id
TTL event_time + INTERVAL {days} DAY
SETTINGS index_granularity = 256""",
        'DROP TABLE event_ids',
    ),
    (
        """\
CREATE MATERIALIZED VIEW event_ids_mv TO event_ids AS
SELECT id, event_time
FROM viewing_events""",
        'DROP VIEW event_ids_mv',
    ),
    (
        """\
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
TTL day + INTERVAL {days} DAY""",
        'DROP TABLE popular_content_daily',
    ),
    (
        """\
CREATE MATERIALIZED VIEW popular_content_mv TO popular_content_daily AS
SELECT
    toDate(event_time) AS day,
    movie_id,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    uniqState(user_id) AS viewers
FROM viewing_events
GROUP BY day, movie_id""",
        'DROP VIEW popular_content_mv',
    ),
    (
        """\
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
TTL day + INTERVAL {days} DAY""",
        'DROP TABLE user_stats_daily',
    ),
    (
        """\
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
GROUP BY user_id, day, movie_id""",
        'DROP VIEW user_stats_mv',
    ),
    (
        """\
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
TTL day + INTERVAL {days} DAY""",
        'DROP TABLE events_daily',
    ),
    (
        """\
CREATE MATERIALIZED VIEW events_daily_mv TO events_daily AS
SELECT
    toDate(event_time) AS day,
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    uniqState(user_id) AS users,
    uniqState(movie_id) AS movies
FROM viewing_events
GROUP BY day""",
        'DROP VIEW events_daily_mv',
    ),
    (
        """\
CREATE TABLE events_hourly
(
    hour DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64),
    users AggregateFunction(uniq, UUID)
)
ENGINE = AggregatingMergeTree
ORDER BY hour
TTL hour + INTERVAL {days} DAY""",
        'DROP TABLE events_hourly',
    ),
    (
        """\
CREATE MATERIALIZED VIEW events_hourly_mv TO events_hourly AS
SELECT
    toStartOfHour(event_time) AS hour,
    count() AS events,
    uniqState(user_id) AS users
FROM viewing_events
GROUP BY hour""",
        'DROP VIEW events_hourly_mv',
    ),
]

CLUSTER = [
    (
        """\
CREATE TABLE viewing_events_local ON CLUSTER {cluster}
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
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/viewing_events_local', '{replica}')
PARTITION BY toYYYYMM(event_time)
ORDER BY (toDate(event_time), user_id, event_time)
TTL event_time + INTERVAL {days} DAY""",
        'DROP TABLE viewing_events_local ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE TABLE viewing_events ON CLUSTER {cluster} AS viewing_events_local
ENGINE = Distributed({cluster}, currentDatabase(), viewing_events_local, cityHash64(user_id))""",
        'DROP TABLE viewing_events ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE TABLE event_ids_local ON CLUSTER {cluster}
(
    id UUID,
    event_time DateTime('UTC')
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/event_ids_local', '{replica}')
ORDER BY id
TTL event_time + INTERVAL {days} DAY
SETTINGS index_granularity = 256""",
        'DROP TABLE event_ids_local ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE TABLE event_ids ON CLUSTER {cluster} AS event_ids_local
ENGINE = Distributed({cluster}, currentDatabase(), event_ids_local)""",
        'DROP TABLE event_ids ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE MATERIALIZED VIEW event_ids_mv ON CLUSTER {cluster} TO event_ids_local AS
SELECT id, event_time
FROM viewing_events_local""",
        'DROP VIEW event_ids_mv ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE TABLE popular_content_daily_local ON CLUSTER {cluster}
(
    day Date,
    movie_id UUID,
    starts SimpleAggregateFunction(sum, UInt64),
    finishes SimpleAggregateFunction(sum, UInt64),
    viewers AggregateFunction(uniq, UUID)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/popular_content_daily_local', '{replica}')
PARTITION BY toYYYYMM(day)
ORDER BY (day, movie_id)
TTL day + INTERVAL {days} DAY""",
        'DROP TABLE popular_content_daily_local ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE TABLE popular_content_daily ON CLUSTER {cluster} AS popular_content_daily_local
ENGINE = Distributed({cluster}, currentDatabase(), popular_content_daily_local)""",
        'DROP TABLE popular_content_daily ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE MATERIALIZED VIEW popular_content_mv ON CLUSTER {cluster} TO popular_content_daily_local AS
SELECT
    toDate(event_time) AS day,
    movie_id,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    uniqState(user_id) AS viewers
FROM viewing_events_local
GROUP BY day, movie_id""",
        'DROP VIEW popular_content_mv ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE TABLE user_stats_daily_local ON CLUSTER {cluster}
(
    user_id UUID,
    day Date,
    movie_id UUID,
    events SimpleAggregateFunction(sum, UInt64),
    starts SimpleAggregateFunction(sum, UInt64),
    finishes SimpleAggregateFunction(sum, UInt64),
    watch_seconds SimpleAggregateFunction(sum, UInt64)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/user_stats_daily_local', '{replica}')
PARTITION BY toYYYYMM(day)
ORDER BY (user_id, day, movie_id)
TTL day + INTERVAL {days} DAY""",
        'DROP TABLE user_stats_daily_local ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE TABLE user_stats_daily ON CLUSTER {cluster} AS user_stats_daily_local
ENGINE = Distributed({cluster}, currentDatabase(), user_stats_daily_local)""",
        'DROP TABLE user_stats_daily ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE MATERIALIZED VIEW user_stats_mv ON CLUSTER {cluster} TO user_stats_daily_local AS
SELECT
    user_id,
    toDate(event_time) AS day,
    movie_id,
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    sumIf(toUInt64(position_seconds), event_type = 'finish') AS watch_seconds
FROM viewing_events_local
GROUP BY user_id, day, movie_id""",
        'DROP VIEW user_stats_mv ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE TABLE events_daily_local ON CLUSTER {cluster}
(
    day Date,
    events SimpleAggregateFunction(sum, UInt64),
    starts SimpleAggregateFunction(sum, UInt64),
    finishes SimpleAggregateFunction(sum, UInt64),
    users AggregateFunction(uniq, UUID),
    movies AggregateFunction(uniq, UUID)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/events_daily_local', '{replica}')
ORDER BY day
TTL day + INTERVAL {days} DAY""",
        'DROP TABLE events_daily_local ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE TABLE events_daily ON CLUSTER {cluster} AS events_daily_local
ENGINE = Distributed({cluster}, currentDatabase(), events_daily_local)""",
        'DROP TABLE events_daily ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE MATERIALIZED VIEW events_daily_mv ON CLUSTER {cluster} TO events_daily_local AS
SELECT
    toDate(event_time) AS day,
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    uniqState(user_id) AS users,
    uniqState(movie_id) AS movies
FROM viewing_events_local
GROUP BY day""",
        'DROP VIEW events_daily_mv ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE TABLE events_hourly_local ON CLUSTER {cluster}
(
    hour DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64),
    users AggregateFunction(uniq, UUID)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/events_hourly_local', '{replica}')
ORDER BY hour
TTL hour + INTERVAL {days} DAY""",
        'DROP TABLE events_hourly_local ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE TABLE events_hourly ON CLUSTER {cluster} AS events_hourly_local
ENGINE = Distributed({cluster}, currentDatabase(), events_hourly_local)""",
        'DROP TABLE events_hourly ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE MATERIALIZED VIEW events_hourly_mv ON CLUSTER {cluster} TO events_hourly_local AS
SELECT
    toStartOfHour(event_time) AS hour,
    count() AS events,
    uniqState(user_id) AS users
FROM viewing_events_local
GROUP BY hour""",
        'DROP VIEW events_hourly_mv ON CLUSTER {cluster} SYNC',
    ),
]


def frozen_statements(retention_days, cluster):
    """(statement, reverse) pairs for one node or for a cluster, placeholders filled in."""
    if not cluster:
        return [(sql.replace("{days}", str(int(retention_days))), reverse) for sql, reverse in SINGLE_NODE]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", cluster):
        raise ValueError(f"CLICKHOUSE_CLUSTER must be a plain identifier, got {cluster!r}")
    return [
        (sql.replace("{days}", str(int(retention_days))).replace("{cluster}", cluster), reverse.replace("{cluster}", cluster))
        for sql, reverse in CLUSTER
    ]


class Migration(migrations.Migration):

    initial = True

    dependencies = [
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ViewingEvent',
                    fields=[
                        ('id', clickhouse_backend.models.UUIDField(primary_key=True, serialize=False)),
                        ('user_id', clickhouse_backend.models.UUIDField()),
                        ('movie_id', clickhouse_backend.models.UUIDField()),
                        ('event_type', clickhouse_backend.models.StringField(low_cardinality=True)),
                        ('position_seconds', clickhouse_backend.models.UInt32Field(default=0)),
                        ('event_time', clickhouse_backend.models.DateTimeField()),
                        ('session_id', clickhouse_backend.models.UUIDField(blank=True, null=True)),
                        ('metadata', clickhouse_backend.models.StringField(default='{}')),
                        ('created_at', clickhouse_backend.models.DateTimeField()),
                    ],
                    options={
                        'db_table': 'viewing_events',
                        'ordering': ['-event_time'],
                        'engine': clickhouse_backend.models.MergeTree(order_by=(models.Func(models.F('event_time'), function='toDate'), 'user_id', 'event_time'), partition_by=models.Func(models.F('event_time'), function='toYYYYMM')),
                        'indexes': [clickhouse_backend.models.Index(fields=['user_id'], granularity=1, name='idx_user_id', type=clickhouse_backend.models.BloomFilter(0.01)), clickhouse_backend.models.Index(fields=['movie_id'], granularity=1, name='idx_movie_id', type=clickhouse_backend.models.BloomFilter(0.01)), clickhouse_backend.models.Index(fields=['session_id'], granularity=1, name='idx_session_id', type=clickhouse_backend.models.BloomFilter(0.01))],
                    },
                    managers=[
                        ('objects', django.db.models.manager.Manager()),
                        ('_overwrite_base_manager', django.db.models.manager.Manager()),
                    ],
                ),
            ],
            database_operations=[
                migrations.RunSQL(sql, reverse)
                for sql, reverse in frozen_statements(settings.RETENTION_DAYS, settings.CLICKHOUSE_CLUSTER)
            ],
        ),
    ]
