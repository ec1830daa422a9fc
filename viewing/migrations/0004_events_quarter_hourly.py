"""Creates events_quarter_hourly, events_quarter_hourly_mv (viewing/ddl.py), backfilling each view's table from the events already stored.

Written by `python -m viewing.ddl migration`; the SQL is frozen here on purpose.
"""

from django.db import migrations

from viewing.ddl_migrations import operations

SINGLE_NODE = [
    (
        """\
CREATE TABLE events_quarter_hourly
(
    quarter DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64),
    starts SimpleAggregateFunction(sum, UInt64),
    finishes SimpleAggregateFunction(sum, UInt64),
    users AggregateFunction(uniq, UUID),
    movies AggregateFunction(uniq, UUID)
)
ENGINE = AggregatingMergeTree
ORDER BY quarter
TTL quarter + INTERVAL {days} DAY""",
        'DROP TABLE events_quarter_hourly',
    ),
    (
        """\
CREATE MATERIALIZED VIEW events_quarter_hourly_mv TO events_quarter_hourly AS
SELECT
    toStartOfFifteenMinutes(event_time) AS quarter,
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    uniqState(user_id) AS users,
    uniqState(movie_id) AS movies
FROM viewing_events
GROUP BY quarter""",
        'DROP VIEW events_quarter_hourly_mv',
    ),
    (
        """\
INSERT INTO events_quarter_hourly
SELECT
    toStartOfFifteenMinutes(event_time) AS quarter,
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    uniqState(user_id) AS users,
    uniqState(movie_id) AS movies
FROM viewing_events
GROUP BY quarter""",
        None,
    ),
]

CLUSTER = [
    (
        """\
CREATE TABLE events_quarter_hourly_local ON CLUSTER {cluster}
(
    quarter DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64),
    starts SimpleAggregateFunction(sum, UInt64),
    finishes SimpleAggregateFunction(sum, UInt64),
    users AggregateFunction(uniq, UUID),
    movies AggregateFunction(uniq, UUID)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/events_quarter_hourly_local', '{replica}')
ORDER BY quarter
TTL quarter + INTERVAL {days} DAY""",
        'DROP TABLE events_quarter_hourly_local ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE TABLE events_quarter_hourly ON CLUSTER {cluster} AS events_quarter_hourly_local
ENGINE = Distributed({cluster}, currentDatabase(), events_quarter_hourly_local)""",
        'DROP TABLE events_quarter_hourly ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE MATERIALIZED VIEW events_quarter_hourly_mv ON CLUSTER {cluster} TO events_quarter_hourly_local AS
SELECT
    toStartOfFifteenMinutes(event_time) AS quarter,
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    uniqState(user_id) AS users,
    uniqState(movie_id) AS movies
FROM viewing_events_local
GROUP BY quarter""",
        'DROP VIEW events_quarter_hourly_mv ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
INSERT INTO events_quarter_hourly_local
SELECT
    toStartOfFifteenMinutes(event_time) AS quarter,
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    uniqState(user_id) AS users,
    uniqState(movie_id) AS movies
FROM cluster({cluster}, currentDatabase(), viewing_events_local)
GROUP BY quarter""",
        None,
    ),
]


class Migration(migrations.Migration):

    dependencies = [("viewing", "0003_engagement")]

    operations = operations(SINGLE_NODE, CLUSTER)
