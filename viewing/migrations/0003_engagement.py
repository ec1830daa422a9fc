"""Creates view_segments, view_segments_mv, recent_events, recent_events_mv (viewing/ddl.py), backfilling each view's table from the events already stored.

Written by `python -m viewing.ddl migration`; the SQL is frozen here on purpose.
"""

from django.db import migrations

from viewing.ddl_migrations import operations

SINGLE_NODE = [
    (
        """\
CREATE TABLE view_segments
(
    movie_id UUID,
    bucket DateTime('UTC'),
    session_id Nullable(UUID),
    user_id UUID,
    first_time SimpleAggregateFunction(min, DateTime('UTC')),
    last_time SimpleAggregateFunction(max, DateTime('UTC')),
    low SimpleAggregateFunction(min, UInt32),
    high SimpleAggregateFunction(max, UInt32),
    events SimpleAggregateFunction(sum, UInt64),
    starts SimpleAggregateFunction(sum, UInt64),
    finishes SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (movie_id, bucket, session_id, user_id)
TTL bucket + INTERVAL {days} DAY
SETTINGS allow_nullable_key = 1""",
        'DROP TABLE view_segments',
    ),
    (
        """\
CREATE MATERIALIZED VIEW view_segments_mv TO view_segments AS
SELECT
    movie_id,
    toStartOfFifteenMinutes(event_time) AS bucket,
    session_id,
    user_id,
    min(event_time) AS first_time,
    max(event_time) AS last_time,
    min(position_seconds) AS low,
    max(position_seconds) AS high,
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes
FROM viewing_events
GROUP BY movie_id, bucket, session_id, user_id""",
        'DROP VIEW view_segments_mv',
    ),
    (
        """\
INSERT INTO view_segments
SELECT
    movie_id,
    toStartOfFifteenMinutes(event_time) AS bucket,
    session_id,
    user_id,
    min(event_time) AS first_time,
    max(event_time) AS last_time,
    min(position_seconds) AS low,
    max(position_seconds) AS high,
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes
FROM viewing_events
GROUP BY movie_id, bucket, session_id, user_id""",
        None,
    ),
    (
        """\
CREATE TABLE recent_events
(
    event_time DateTime('UTC'),
    movie_id UUID,
    session_id Nullable(UUID),
    user_id UUID,
    finish UInt8
)
ENGINE = MergeTree
ORDER BY event_time
TTL event_time + INTERVAL 2 HOUR
SETTINGS merge_with_ttl_timeout = 600""",
        'DROP TABLE recent_events',
    ),
    (
        """\
CREATE MATERIALIZED VIEW recent_events_mv TO recent_events AS
SELECT
    event_time,
    movie_id,
    session_id,
    user_id,
    event_type = 'finish' AS finish
FROM viewing_events
WHERE session_id IS NOT NULL AND event_time > now() - INTERVAL 2 HOUR""",
        'DROP VIEW recent_events_mv',
    ),
    (
        """\
INSERT INTO recent_events
SELECT
    event_time,
    movie_id,
    session_id,
    user_id,
    event_type = 'finish' AS finish
FROM viewing_events
WHERE session_id IS NOT NULL AND event_time > now() - INTERVAL 2 HOUR""",
        None,
    ),
]

CLUSTER = [
    (
        """\
CREATE TABLE view_segments_local ON CLUSTER {cluster}
(
    movie_id UUID,
    bucket DateTime('UTC'),
    session_id Nullable(UUID),
    user_id UUID,
    first_time SimpleAggregateFunction(min, DateTime('UTC')),
    last_time SimpleAggregateFunction(max, DateTime('UTC')),
    low SimpleAggregateFunction(min, UInt32),
    high SimpleAggregateFunction(max, UInt32),
    events SimpleAggregateFunction(sum, UInt64),
    starts SimpleAggregateFunction(sum, UInt64),
    finishes SimpleAggregateFunction(sum, UInt64)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/view_segments_local', '{replica}')
PARTITION BY toYYYYMM(bucket)
ORDER BY (movie_id, bucket, session_id, user_id)
TTL bucket + INTERVAL {days} DAY
SETTINGS allow_nullable_key = 1""",
        'DROP TABLE view_segments_local ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE TABLE view_segments ON CLUSTER {cluster} AS view_segments_local
ENGINE = Distributed({cluster}, currentDatabase(), view_segments_local)""",
        'DROP TABLE view_segments ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE MATERIALIZED VIEW view_segments_mv ON CLUSTER {cluster} TO view_segments_local AS
SELECT
    movie_id,
    toStartOfFifteenMinutes(event_time) AS bucket,
    session_id,
    user_id,
    min(event_time) AS first_time,
    max(event_time) AS last_time,
    min(position_seconds) AS low,
    max(position_seconds) AS high,
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes
FROM viewing_events_local
GROUP BY movie_id, bucket, session_id, user_id""",
        'DROP VIEW view_segments_mv ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
INSERT INTO view_segments_local
SELECT
    movie_id,
    toStartOfFifteenMinutes(event_time) AS bucket,
    session_id,
    user_id,
    min(event_time) AS first_time,
    max(event_time) AS last_time,
    min(position_seconds) AS low,
    max(position_seconds) AS high,
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes
FROM cluster({cluster}, currentDatabase(), viewing_events_local)
GROUP BY movie_id, bucket, session_id, user_id""",
        None,
    ),
    (
        """\
CREATE TABLE recent_events_local ON CLUSTER {cluster}
(
    event_time DateTime('UTC'),
    movie_id UUID,
    session_id Nullable(UUID),
    user_id UUID,
    finish UInt8
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/recent_events_local', '{replica}')
ORDER BY event_time
TTL event_time + INTERVAL 2 HOUR
SETTINGS merge_with_ttl_timeout = 600""",
        'DROP TABLE recent_events_local ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE TABLE recent_events ON CLUSTER {cluster} AS recent_events_local
ENGINE = Distributed({cluster}, currentDatabase(), recent_events_local)""",
        'DROP TABLE recent_events ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE MATERIALIZED VIEW recent_events_mv ON CLUSTER {cluster} TO recent_events_local AS
SELECT
    event_time,
    movie_id,
    session_id,
    user_id,
    event_type = 'finish' AS finish
FROM viewing_events_local
WHERE session_id IS NOT NULL AND event_time > now() - INTERVAL 2 HOUR""",
        'DROP VIEW recent_events_mv ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
INSERT INTO recent_events_local
SELECT
    event_time,
    movie_id,
    session_id,
    user_id,
    event_type = 'finish' AS finish
FROM cluster({cluster}, currentDatabase(), viewing_events_local)
WHERE session_id IS NOT NULL AND event_time > now() - INTERVAL 2 HOUR""",
        None,
    ),
]


class Migration(migrations.Migration):

    dependencies = [("viewing", "0002_suppressed_users")]

    operations = operations(SINGLE_NODE, CLUSTER)
