"""verify_aggregates and rebuild_aggregates (viewing/aggregates.py): drift named per table and
day, and mended from the raw table, checked against the plain-Python reference."""

import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError

from tests.aggregates import tables_and_reference
from tests.conftest import query
from viewing.aggregates import aggregates_rebuild, aggregates_verify, fed_views
from viewing.services import events_store, unfinished_inserts

pytestmark = pytest.mark.embedded


def make_events(rng, n, days=3):
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    users = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(5)]
    movies = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(3)]
    sessions = [None] + [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(4)]
    return [{
        "id": uuid.UUID(int=rng.getrandbits(128), version=4),
        "user_id": rng.choice(users),
        "movie_id": rng.choice(movies),
        "event_type": rng.choice(["start", "progress", "finish"]),
        "position_seconds": rng.randrange(7200),
        # The first few in the last hour, so the table of recent events has rows too.
        "event_time": now - timedelta(seconds=rng.randrange(3600 if i < 10 else days * 86400)),
        "session_id": rng.choice(sessions),
        "metadata": "{}",
    } for i in range(n)]


def verify(days=7):
    out = StringIO()
    try:
        call_command("verify_aggregates", days=days, stdout=out)
    except CommandError as e:
        return 1, out.getvalue(), str(e)
    return 0, out.getvalue(), ""


@pytest.fixture
def stored(ch):
    events = make_events(random.Random(3), 300)
    assert events_store(events=events) == 300
    return events


def test_no_drift_when_the_views_fed_every_table(stored):
    status, out, _ = verify()
    assert status == 0 and out.startswith("No drift: every table the raw events feed matches the raw table")
    assert {view.target.name for view in fed_views()} >= {"event_ids", "events_daily", "recent_events"}


def test_a_corrupted_row_is_named_and_a_rebuild_mends_it(stored):
    day = stored[20]["event_time"].date()
    movie = stored[20]["movie_id"]
    query("INSERT INTO popular_content_daily (day, movie_id, starts, finishes, viewers) "
          "SELECT %(day)s, %(movie)s, 1, 0, uniqState(generateUUIDv4())", {"day": day, "movie": movie})
    status, out, error = verify()
    assert status == 1
    movies = len({e["movie_id"] for e in stored if e["event_time"].date() == day})
    assert out.strip().splitlines() == [f"popular_content_daily {day}: {movies} rows stored, {movies} expected "
                                        "from the raw table (values differ)"]
    assert f"rebuild_aggregates --from {day} --to {day}" in error
    call_command("rebuild_aggregates", "--from", str(day), "--to", str(day), stdout=StringIO())
    assert verify()[0] == 0
    tables, expected = tables_and_reference(stored)
    assert tables == expected


def test_rows_gone_from_the_raw_table_are_drift_in_every_table_until_rebuilt(stored):
    # What an erasure does first: the raw rows go, the views cannot take anything back.
    user = stored[0]["user_id"]
    days = sorted({e["event_time"].date() for e in stored if e["user_id"] == user})
    query("DELETE FROM viewing_events WHERE user_id = %(user)s", {"user": user})
    drifts = aggregates_verify(days=days)
    assert {d.table for d in drifts} >= {"event_ids", "user_stats_daily", "events_daily", "trends_hourly"}
    assert {d.day for d in drifts} == set(days)
    aggregates_rebuild(days=days)
    assert aggregates_verify(days=days) == []
    tables, expected = tables_and_reference([e for e in stored if e["user_id"] != user])
    assert tables == expected


def test_a_rebuild_clears_a_day_without_raw_events_and_keeps_the_others(stored):
    empty_day = min(e["event_time"] for e in stored).date() - timedelta(days=3)
    query("INSERT INTO events_daily (day, events, starts, finishes, users, movies) "
          "SELECT %(day)s, 7, 0, 0, uniqState(generateUUIDv4()), uniqState(generateUUIDv4())", {"day": empty_day})
    assert [(d.table, d.day, d.stored_rows, d.expected_rows) for d in aggregates_verify(days=[empty_day])] == [
        ("events_daily", empty_day, 1, 0)]
    call_command("rebuild_aggregates", "--from", str(empty_day), "--to", str(datetime.now(UTC).date()),
                 stdout=StringIO())
    tables, expected = tables_and_reference(stored)
    assert tables == expected


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "2026-11-30", "--to", "2026-11-01"], "--from must not be after --to."),
    (["--from", "yesterday", "--to", "2026-11-01"], "'yesterday' is not a date (YYYY-MM-DD)."),
    (["--from", "2000-01-01", "--to", "2026-11-01"], "At most 3660 days at once."),
])
def test_rebuild_refuses_bad_ranges(args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("rebuild_aggregates", *args)


def test_a_rebuild_completes_an_insert_left_half_written_and_its_retry_adds_nothing(ch):
    events = make_events(random.Random(9), 40, days=1)
    query("ALTER TABLE events_daily ADD CONSTRAINT fault CHECK day < '2000-01-01'")
    try:
        with pytest.raises(DatabaseError):
            events_store(events=events)
    finally:
        query("ALTER TABLE events_daily DROP CONSTRAINT fault")
    assert len(unfinished_inserts()) == 1  # the raw table took the rows, events_daily did not
    aggregates_rebuild(days=[datetime.now(UTC).date()])
    assert unfinished_inserts() == []  # completed by the rebuild, never sent again
    assert events_store(events=events) == 0  # the retry: every event is there
    tables, expected = tables_and_reference(events)
    assert tables == expected
