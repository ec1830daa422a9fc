"""The engagement migration on a database that already holds events: it backfills both tables
from the raw one, the materialized views take over from there, and it reverses."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from tests import reference_engagement as reference
from tests.conftest import query
from tests.engagement_data import edge_cases, random_sessions
from viewing import clock
from viewing.services import events_store

TABLES = ["view_segments", "recent_events", "view_segments_mv", "recent_events_mv"]


def rows(events):
    return [
        {"id": e.id, "user_id": e.user_id, "movie_id": e.movie_id, "event_type": e.event_type,
         "position_seconds": e.position_seconds, "event_time": e.event_time, "session_id": e.session_id,
         "metadata": "{}"}
        for e in events
    ]


def existing(names):
    return {name for (name,) in query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND name IN %(names)s", {"names": names})}


def migrate(target=None):
    """To `target`, or with None to the latest migration (where every other test expects it)."""
    call_command("migrate", "viewing", *([target] if target else []), database="clickhouse", verbosity=0)


@pytest.fixture
def before_engagement(ch):
    migrate("0002_suppressed_users")
    try:
        yield
    finally:
        migrate()


def get(client, path, **params):
    response = client.get(f"/api/v1/analytics/{path}", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_backfill_from_stored_events(before_engagement, client):
    assert existing(TABLES) == set()
    moment = datetime.now(UTC).replace(microsecond=0)
    now = moment.replace(tzinfo=None)
    events = edge_cases(now - timedelta(minutes=30))[0] + random_sessions(now, seed=9, sessions=80, days_back=3)
    events_store(events=rows(events))

    migrate("0003_engagement")
    assert existing(TABLES) == set(TABLES)
    with clock.frozen(moment):
        today = now.date()
        for tz in ("UTC", "Asia/Kathmandu"):
            day = reference.local(now, tz).date()
            assert get(client, "summary", days=3, tz=tz) == reference.summary(
                events, first_day=day - timedelta(days=2), last_day=day, tz=tz)
        movie = events[-1].movie_id
        assert get(client, f"content/{movie}/retention", days=4) == reference.retention(
            events, movie_id=movie, first_day=today - timedelta(days=3), last_day=today)
        assert get(client, "realtime", window=3600) == reference.realtime(events, as_of=now, window=3600)
    recent = sum(e.session_id is not None and e.event_time > now - timedelta(hours=2) for e in events)
    assert query("SELECT count() FROM recent_events") == [(recent,)]
    assert recent > 0

    # From here on the views feed both tables; the backfill is not repeated.
    more = random_sessions(now, seed=10, sessions=20, days_back=1)
    events_store(events=rows(more))
    with clock.frozen(moment):
        assert get(client, "summary", days=2) == reference.summary(
            events + more, first_day=today - timedelta(days=1), last_day=today)


def test_reverses(ch):
    migrate("0002_suppressed_users")
    try:
        assert existing(TABLES) == set()
        assert query("SELECT count() FROM system.tables WHERE database = currentDatabase() "
                     "AND name = 'viewing_events'") == [(1,)]
    finally:
        migrate()
    assert existing(TABLES) == set(TABLES)
