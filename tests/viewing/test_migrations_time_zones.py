"""Migrations 0004 (events_quarter_hourly) and 0006 (trends_hourly) on a database that already
holds events: forwards they backfill from the raw table, backwards they drop their tables, and
forwards again the views feed new events."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connections

from tests.conftest import query

FROM_RAW = """
SELECT {bucket}(event_time) AS b, count(), countIf(event_type = 'start'),
       countIf(event_type = 'finish'), uniqExact(user_id), uniqExact(movie_id)
FROM viewing_events GROUP BY b ORDER BY b
"""
COUNTED = """
SELECT {column}, sum(events), sum(starts), sum(finishes), uniqMerge(users), uniqMerge(movies)
FROM {table} GROUP BY {column} ORDER BY {column}
"""
MIGRATIONS = [
    ("0003", "0004", "events_quarter_hourly", "quarter", "toStartOfFifteenMinutes"),
    ("0005", "0006", "trends_hourly", "hour", "toStartOfHour"),
]


def tables():
    return {name for (name,) in query("SELECT name FROM system.tables WHERE database = currentDatabase()")}


@pytest.mark.parametrize("before, migration, table, column, bucket", MIGRATIONS)
def test_backfills_from_the_raw_table_and_is_reversible(ch, before, migration, table, column, bucket):
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    users, movies = [uuid.uuid4() for _ in range(4)], [uuid.uuid4() for _ in range(3)]
    rows = [
        (uuid.uuid4(), users[i % 4], movies[i % 3], ("start", "progress", "finish")[i % 3], i,
         now - timedelta(minutes=7 * i), None, "{}", now)
        for i in range(300)
    ]
    counted, from_raw = COUNTED.format(table=table, column=column), FROM_RAW.format(bucket=bucket)
    try:
        call_command("migrate", "viewing", before, database="clickhouse", verbosity=0)
        assert table not in tables() and f"{table}_mv" not in tables()
        with connections["clickhouse"].cursor() as cursor:  # events stored before the table exists
            cursor.executemany("INSERT INTO viewing_events VALUES", rows)
        call_command("migrate", "viewing", migration, database="clickhouse", verbosity=0)
        backfilled = query(counted)
        assert backfilled == query(from_raw) and sum(r[1] for r in backfilled) == 300
        with connections["clickhouse"].cursor() as cursor:  # from now on the view feeds it
            cursor.executemany("INSERT INTO viewing_events VALUES", [(uuid.uuid4(), *r[1:]) for r in rows[:10]])
        assert query(counted) == query(from_raw) and sum(r[1] for r in query(counted)) == 310
    finally:
        call_command("migrate", "viewing", database="clickhouse", verbosity=0)
    assert {table, f"{table}_mv"} <= tables()


SPANS_FROM_RAW = """
SELECT toDate(event_time) AS day, who.1 AS kind, who.2 AS id,
       min(intDiv(modulo(toUnixTimestamp(event_time), 86400), 900)), max(intDiv(modulo(toUnixTimestamp(event_time), 86400), 900))
FROM viewing_events ARRAY JOIN [(0, user_id), (1, movie_id)] AS who
GROUP BY day, kind, id ORDER BY day, kind, id
"""
SPANS = "SELECT day, kind, id, min(first), max(last) FROM active_span_daily GROUP BY day, kind, id ORDER BY day, kind, id"


def test_active_span_daily_backfills_and_is_reversible(ch):
    """0008: each viewer's and movie's first and last quarter hour of every UTC day, from the
    events stored before it (two days, quarters 0 and 95 included), then from the view."""
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    users, movies = [uuid.uuid4() for _ in range(3)], [uuid.uuid4() for _ in range(2)]
    moments = [midnight - timedelta(days=1), midnight - timedelta(seconds=1), midnight, midnight + timedelta(minutes=14),
               midnight + timedelta(minutes=15), midnight + timedelta(hours=18, minutes=15)]
    rows = [(uuid.uuid4(), users[i % 3], movies[i % 2], "start", i, moment, None, "{}", midnight)
            for i, moment in enumerate(moments * 3)]
    try:
        call_command("migrate", "viewing", "0007", database="clickhouse", verbosity=0)
        assert "active_span_daily" not in tables()
        with connections["clickhouse"].cursor() as cursor:
            cursor.executemany("INSERT INTO viewing_events VALUES", rows)
        call_command("migrate", "viewing", "0008", database="clickhouse", verbosity=0)
        backfilled = query(SPANS)
        assert backfilled == query(SPANS_FROM_RAW) and {r[1] for r in backfilled} == {0, 1}
        assert {r[3] for r in backfilled} | {r[4] for r in backfilled} == {0, 1, 73, 95}
        with connections["clickhouse"].cursor() as cursor:  # the view feeds it from now on
            cursor.executemany("INSERT INTO viewing_events VALUES",
                               [(uuid.uuid4(), uuid.uuid4(), *r[2:]) for r in rows[:2]])
        assert query(SPANS) == query(SPANS_FROM_RAW) and len(query(SPANS)) == len(backfilled) + 2
        call_command("migrate", "viewing", "0007", database="clickhouse", verbosity=0)
        assert not {"active_span_daily", "active_span_daily_mv"} & tables()
    finally:
        call_command("migrate", "viewing", database="clickhouse", verbosity=0)
    assert {"active_span_daily", "active_span_daily_mv"} <= tables()
