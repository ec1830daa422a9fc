"""Creates active_span_daily, active_span_daily_mv (viewing/ddl.py), backfilling each view's table from the events already stored.

Written by `python -m viewing.ddl migration`; the SQL is frozen here on purpose.
"""

from django.db import migrations

from viewing.ddl_migrations import operations

SINGLE_NODE = [
    (
        """\
CREATE TABLE active_span_daily
(
    day Date,
    kind UInt8,
    id UUID,
    first SimpleAggregateFunction(min, UInt8),
    last SimpleAggregateFunction(max, UInt8),
    quarters SimpleAggregateFunction(groupBitOr, UInt128)
)
ENGINE = AggregatingMergeTree
ORDER BY (day, kind, id)
TTL day + INTERVAL {days} DAY
SETTINGS non_replicated_deduplication_window = 1000""",
        'DROP TABLE active_span_daily',
    ),
    (
        """\
CREATE MATERIALIZED VIEW active_span_daily_mv TO active_span_daily AS
SELECT
    toDate(event_time) AS day,
    who.1 AS kind,
    who.2 AS id,
    min(toUInt8(intDiv(modulo(toUnixTimestamp(event_time), 86400), 900))) AS first,
    max(toUInt8(intDiv(modulo(toUnixTimestamp(event_time), 86400), 900))) AS last,
    groupBitOr(bitShiftLeft(toUInt128(1), toUInt8(intDiv(modulo(toUnixTimestamp(event_time), 86400), 900)))) AS quarters
FROM viewing_events
ARRAY JOIN [(toUInt8(0), user_id), (toUInt8(1), movie_id)] AS who
GROUP BY day, kind, id""",
        'DROP VIEW active_span_daily_mv',
    ),
    (
        """\
INSERT INTO active_span_daily
SELECT
    toDate(event_time) AS day,
    who.1 AS kind,
    who.2 AS id,
    min(toUInt8(intDiv(modulo(toUnixTimestamp(event_time), 86400), 900))) AS first,
    max(toUInt8(intDiv(modulo(toUnixTimestamp(event_time), 86400), 900))) AS last,
    groupBitOr(bitShiftLeft(toUInt128(1), toUInt8(intDiv(modulo(toUnixTimestamp(event_time), 86400), 900)))) AS quarters
FROM viewing_events
ARRAY JOIN [(toUInt8(0), user_id), (toUInt8(1), movie_id)] AS who
GROUP BY day, kind, id""",
        None,
    ),
]

CLUSTER = [
    (
        """\
CREATE TABLE active_span_daily_local ON CLUSTER {cluster}
(
    day Date,
    kind UInt8,
    id UUID,
    first SimpleAggregateFunction(min, UInt8),
    last SimpleAggregateFunction(max, UInt8),
    quarters SimpleAggregateFunction(groupBitOr, UInt128)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/active_span_daily_local', '{replica}')
ORDER BY (day, kind, id)
TTL day + INTERVAL {days} DAY
SETTINGS non_replicated_deduplication_window = 1000""",
        'DROP TABLE active_span_daily_local ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE TABLE active_span_daily ON CLUSTER {cluster} AS active_span_daily_local
ENGINE = Distributed({cluster}, currentDatabase(), active_span_daily_local)""",
        'DROP TABLE active_span_daily ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE MATERIALIZED VIEW active_span_daily_mv ON CLUSTER {cluster} TO active_span_daily_local AS
SELECT
    toDate(event_time) AS day,
    who.1 AS kind,
    who.2 AS id,
    min(toUInt8(intDiv(modulo(toUnixTimestamp(event_time), 86400), 900))) AS first,
    max(toUInt8(intDiv(modulo(toUnixTimestamp(event_time), 86400), 900))) AS last,
    groupBitOr(bitShiftLeft(toUInt128(1), toUInt8(intDiv(modulo(toUnixTimestamp(event_time), 86400), 900)))) AS quarters
FROM viewing_events_local
ARRAY JOIN [(toUInt8(0), user_id), (toUInt8(1), movie_id)] AS who
GROUP BY day, kind, id""",
        'DROP VIEW active_span_daily_mv ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
INSERT INTO active_span_daily_local
SELECT
    toDate(event_time) AS day,
    who.1 AS kind,
    who.2 AS id,
    min(toUInt8(intDiv(modulo(toUnixTimestamp(event_time), 86400), 900))) AS first,
    max(toUInt8(intDiv(modulo(toUnixTimestamp(event_time), 86400), 900))) AS last,
    groupBitOr(bitShiftLeft(toUInt128(1), toUInt8(intDiv(modulo(toUnixTimestamp(event_time), 86400), 900)))) AS quarters
FROM cluster({cluster}, currentDatabase(), viewing_events_local)
ARRAY JOIN [(toUInt8(0), user_id), (toUInt8(1), movie_id)] AS who
GROUP BY day, kind, id""",
        None,
    ),
]


class Migration(migrations.Migration):

    dependencies = [("viewing", "0007_drop_events_hourly")]

    operations = operations(SINGLE_NODE, CLUSTER)
