"""Creates trends_hourly, trends_hourly_mv (viewing/ddl.py), backfilling each view's table from the events already stored.

Written by `python -m viewing.ddl migration`; the SQL is frozen here on purpose.
"""

from django.db import migrations

from viewing.ddl_migrations import operations

SINGLE_NODE = [
    (
        """\
CREATE TABLE trends_hourly
(
    hour DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64),
    starts SimpleAggregateFunction(sum, UInt64),
    finishes SimpleAggregateFunction(sum, UInt64),
    users AggregateFunction(uniq, UUID),
    movies AggregateFunction(uniq, UUID)
)
ENGINE = AggregatingMergeTree
ORDER BY hour
TTL hour + INTERVAL {days} DAY
SETTINGS non_replicated_deduplication_window = 1000""",
        'DROP TABLE trends_hourly',
    ),
    (
        """\
CREATE MATERIALIZED VIEW trends_hourly_mv TO trends_hourly AS
SELECT
    toStartOfHour(event_time) AS hour,
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    uniqState(user_id) AS users,
    uniqState(movie_id) AS movies
FROM viewing_events
GROUP BY hour""",
        'DROP VIEW trends_hourly_mv',
    ),
    (
        """\
INSERT INTO trends_hourly
SELECT
    toStartOfHour(event_time) AS hour,
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    uniqState(user_id) AS users,
    uniqState(movie_id) AS movies
FROM viewing_events
GROUP BY hour""",
        None,
    ),
]

CLUSTER = [
    (
        """\
CREATE TABLE trends_hourly_local ON CLUSTER {cluster}
(
    hour DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64),
    starts SimpleAggregateFunction(sum, UInt64),
    finishes SimpleAggregateFunction(sum, UInt64),
    users AggregateFunction(uniq, UUID),
    movies AggregateFunction(uniq, UUID)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/trends_hourly_local', '{replica}')
ORDER BY hour
TTL hour + INTERVAL {days} DAY
SETTINGS non_replicated_deduplication_window = 1000""",
        'DROP TABLE trends_hourly_local ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE TABLE trends_hourly ON CLUSTER {cluster} AS trends_hourly_local
ENGINE = Distributed({cluster}, currentDatabase(), trends_hourly_local)""",
        'DROP TABLE trends_hourly ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE MATERIALIZED VIEW trends_hourly_mv ON CLUSTER {cluster} TO trends_hourly_local AS
SELECT
    toStartOfHour(event_time) AS hour,
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    uniqState(user_id) AS users,
    uniqState(movie_id) AS movies
FROM viewing_events_local
GROUP BY hour""",
        'DROP VIEW trends_hourly_mv ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
INSERT INTO trends_hourly_local
SELECT
    toStartOfHour(event_time) AS hour,
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    uniqState(user_id) AS users,
    uniqState(movie_id) AS movies
FROM cluster({cluster}, currentDatabase(), viewing_events_local)
GROUP BY hour""",
        None,
    ),
]


class Migration(migrations.Migration):

    dependencies = [("viewing", "0005_insert_deduplication")]

    operations = operations(SINGLE_NODE, CLUSTER)
