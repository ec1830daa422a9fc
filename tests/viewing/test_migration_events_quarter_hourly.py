"""Migration 0004 (events_quarter_hourly) on a database that already holds events: forwards it
backfills the quarter hours from the raw table, backwards it drops them, and forwards again the
view feeds new events."""

import uuid
from datetime import UTC, datetime, timedelta

from django.core.management import call_command
from django.db import connections

from tests.conftest import query

COUNTED = """
SELECT quarter, sum(events), sum(starts), sum(finishes), uniqMerge(users), uniqMerge(movies)
FROM events_quarter_hourly GROUP BY quarter ORDER BY quarter
"""
FROM_RAW = """
SELECT toStartOfFifteenMinutes(event_time) AS q, count(), countIf(event_type = 'start'),
       countIf(event_type = 'finish'), uniqExact(user_id), uniqExact(movie_id)
FROM viewing_events GROUP BY q ORDER BY q
"""


def tables():
    return {name for (name,) in query("SELECT name FROM system.tables WHERE database = currentDatabase()")}


def test_0004_backfills_from_the_raw_table_and_is_reversible(ch):
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    users, movies = [uuid.uuid4() for _ in range(4)], [uuid.uuid4() for _ in range(3)]
    rows = [
        (uuid.uuid4(), users[i % 4], movies[i % 3], ("start", "progress", "finish")[i % 3], i,
         now - timedelta(minutes=7 * i), None, "{}", now)
        for i in range(300)
    ]
    try:
        call_command("migrate", "viewing", "0003", database="clickhouse", verbosity=0)
        assert "events_quarter_hourly" not in tables() and "events_quarter_hourly_mv" not in tables()
        with connections["clickhouse"].cursor() as cursor:  # events stored before 0004 exists
            cursor.executemany("INSERT INTO viewing_events VALUES", rows)
        call_command("migrate", "viewing", "0004", database="clickhouse", verbosity=0)
        backfilled = query(COUNTED)
        assert backfilled == query(FROM_RAW) and sum(r[1] for r in backfilled) == 300
        with connections["clickhouse"].cursor() as cursor:  # from now on the view feeds it
            cursor.executemany("INSERT INTO viewing_events VALUES", [(uuid.uuid4(), *r[1:]) for r in rows[:10]])
        assert query(COUNTED) == query(FROM_RAW) and sum(r[1] for r in query(COUNTED)) == 310
    finally:
        call_command("migrate", "viewing", database="clickhouse", verbosity=0)
    assert {"events_quarter_hourly", "events_quarter_hourly_mv"} <= tables()
