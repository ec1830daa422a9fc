"""Drops events_hourly and events_hourly_mv: peak hours read trends_hourly (migration 0006),
which holds the same two columns per UTC hour (events, users) and three more, so every insert
wrote the same hourly rows twice. One view and one part per insert fewer: the engine's fixed
cost per insert is a part per table (docs/performance.md, "Ingestion: where an event's time goes").

Backwards it creates both again as they were and backfills events_hourly from the raw table.
The SQL is frozen here on purpose (written from the declarations before they were removed).
"""

from django.db import migrations

from viewing.ddl_migrations import operations

SINGLE_NODE = [
    (
        None,
        """\
INSERT INTO events_hourly
SELECT
    toStartOfHour(event_time) AS hour,
    count() AS events,
    uniqState(user_id) AS users
FROM viewing_events
GROUP BY hour""",
    ),
    (
        'DROP VIEW events_hourly_mv',
        """\
CREATE MATERIALIZED VIEW events_hourly_mv TO events_hourly AS
SELECT
    toStartOfHour(event_time) AS hour,
    count() AS events,
    uniqState(user_id) AS users
FROM viewing_events
GROUP BY hour""",
    ),
    (
        'DROP TABLE events_hourly',
        """\
CREATE TABLE events_hourly
(
    hour DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64),
    users AggregateFunction(uniq, UUID)
)
ENGINE = AggregatingMergeTree
ORDER BY hour
TTL hour + INTERVAL {days} DAY
SETTINGS non_replicated_deduplication_window = 1000""",
    ),
]

CLUSTER = [
    (
        None,
        """\
INSERT INTO events_hourly_local
SELECT
    toStartOfHour(event_time) AS hour,
    count() AS events,
    uniqState(user_id) AS users
FROM cluster({cluster}, currentDatabase(), viewing_events_local)
GROUP BY hour""",
    ),
    (
        'DROP VIEW events_hourly_mv ON CLUSTER {cluster} SYNC',
        """\
CREATE MATERIALIZED VIEW events_hourly_mv ON CLUSTER {cluster} TO events_hourly_local AS
SELECT
    toStartOfHour(event_time) AS hour,
    count() AS events,
    uniqState(user_id) AS users
FROM viewing_events_local
GROUP BY hour""",
    ),
    (
        'DROP TABLE events_hourly ON CLUSTER {cluster} SYNC',
        """\
CREATE TABLE events_hourly ON CLUSTER {cluster} AS events_hourly_local
ENGINE = Distributed({cluster}, currentDatabase(), events_hourly_local)""",
    ),
    (
        'DROP TABLE events_hourly_local ON CLUSTER {cluster} SYNC',
        """\
CREATE TABLE events_hourly_local ON CLUSTER {cluster}
(
    hour DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64),
    users AggregateFunction(uniq, UUID)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/events_hourly_local', '{replica}')
ORDER BY hour
TTL hour + INTERVAL {days} DAY
SETTINGS non_replicated_deduplication_window = 1000""",
    ),
]


class Migration(migrations.Migration):

    dependencies = [("viewing", "0006_trends_hourly")]

    operations = operations(SINGLE_NODE, CLUSTER)

