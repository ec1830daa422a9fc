"""Migration 0007 (events_hourly dropped: peak hours read trends_hourly) on a database that
already holds events: backwards it creates events_hourly again and backfills it from the raw
table, forwards it drops it, and peak hours give the raw table's answer either way."""

import uuid
from datetime import UTC, datetime, timedelta

from django.core.management import call_command
from django.db import connections

from tests.conftest import query
from viewing.selectors import statement
from viewing.windows import Window

FROM_RAW = """
SELECT toStartOfHour(event_time) AS h, count(), uniqExact(user_id)
FROM viewing_events GROUP BY h ORDER BY h
"""
EVENTS_HOURLY = "SELECT hour, sum(events), uniqMerge(users) FROM events_hourly GROUP BY hour ORDER BY hour"
PEAK_FROM_RAW = """
SELECT toHour(event_time) AS h, count(), uniqExact(user_id)
FROM viewing_events WHERE event_time >= %(start)s AND event_time < %(end)s GROUP BY h ORDER BY h
"""


def tables():
    return {name for (name,) in query("SELECT name FROM system.tables WHERE database = currentDatabase()")}


def insert(rows):
    with connections["clickhouse"].cursor() as cursor:
        cursor.executemany("INSERT INTO viewing_events VALUES", rows)


def test_drops_events_hourly_reversibly_and_peak_hours_stay_the_raw_tables_answer(ch):
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    users, movies = [uuid.uuid4() for _ in range(5)], [uuid.uuid4() for _ in range(3)]
    rows = [
        (uuid.uuid4(), users[i % 5], movies[i % 3], ("start", "progress", "finish")[i % 3], i,
         now - timedelta(minutes=11 * i), None, "{}", now)
        for i in range(300)
    ]
    window = Window.of_days(4, now=datetime.now(UTC))
    peak_hours = statement("peak_hours", window=window)  # the service's SQL: trends_hourly in UTC
    assert "FROM trends_hourly" in peak_hours[0]
    bounds = {"start": window.start, "end": window.end}
    insert(rows)  # stored while peak hours read trends_hourly (0007 applied)
    assert "events_hourly" not in tables() and "events_hourly_mv" not in tables()
    assert query(*peak_hours) == query(PEAK_FROM_RAW, bounds)
    try:
        call_command("migrate", "viewing", "0006", database="clickhouse", verbosity=0)
        assert {"events_hourly", "events_hourly_mv"} <= tables()
        backfilled = query(EVENTS_HOURLY)
        assert backfilled == query(FROM_RAW) and sum(r[1] for r in backfilled) == 300
        insert([(uuid.uuid4(), *r[1:]) for r in rows[:10]])  # its view feeds it again
        assert query(EVENTS_HOURLY) == query(FROM_RAW)
    finally:
        call_command("migrate", "viewing", database="clickhouse", verbosity=0)
    assert "events_hourly" not in tables() and "events_hourly_mv" not in tables()
    insert([(uuid.uuid4(), *r[1:]) for r in rows[:10]])
    assert query(*peak_hours) == query(PEAK_FROM_RAW, bounds)
    assert sum(r[1] for r in query(PEAK_FROM_RAW, bounds)) == 320
