"""`generate_events` and viewing.generator: exact counts, idempotent re-runs, realistic shape."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import query
from viewing.generator import event_batches

NOW = datetime(2026, 11, 28, 18, 30, tzinfo=UTC)


def generate(**options):
    out = StringIO()
    call_command("generate_events", stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def test_it_stores_exactly_n_events_and_a_rerun_stores_none(ch):
    options = dict(events=3000, days=3, users=50, movies=20, seed=5, batch_size=1000)
    assert "stored 3000 new" in generate(**options)
    assert "stored 0 new (3000 already there)" in generate(**options)
    assert query("SELECT count(), uniqExact(id) FROM viewing_events") == [(3000, 3000)]
    # Within the window of 3 UTC days ending today, never ahead of now.
    (first, last), = query("SELECT min(event_time), max(event_time) FROM viewing_events")
    today = datetime.now(UTC).date()
    assert first.date() >= today - timedelta(days=2) and last <= datetime.now(UTC).replace(tzinfo=None)


def test_the_same_seed_gives_the_same_events_whenever_it_runs():
    def ids(now):
        return [e["id"] for batch in event_batches(events=500, days=2, users=10, movies=5, seed=9, now=now)
                for e in batch]

    assert ids(NOW) == ids(NOW + timedelta(hours=30))
    assert ids(NOW) != [e["id"] for b in event_batches(events=500, days=2, users=10, movies=5, seed=10, now=NOW)
                        for e in b]


def test_events_look_like_viewing():
    events = [e for b in event_batches(events=40_000, days=14, users=400, movies=100, seed=1, now=NOW,
                                       batch_size=7000) for e in b]
    assert len(events) == 40_000
    types = Counter(e["event_type"] for e in events)
    assert types["progress"] > types["start"] > types["finish"] > 0.3 * types["start"]
    # Zipf-like: the most started title beats the median title many times over.
    starts = Counter(e["movie_id"] for e in events if e["event_type"] == "start")
    counts = sorted(starts.values(), reverse=True)
    assert counts[0] > 5 * counts[len(counts) // 2]
    # Evening peak, night trough (UTC).
    by_hour = Counter(e["event_time"].hour for e in events)
    assert by_hour[21] > 3 * by_hour[4]
    # Sessions: one start each, positions never go back within a session.
    sessions = {}
    for e in sorted(events, key=lambda e: e["event_time"]):
        sessions.setdefault(e["session_id"], []).append(e)
    for session in sessions.values():
        assert session[0]["event_type"] == "start"
        assert [e["event_type"] for e in session].count("finish") <= 1
        positions = [e["position_seconds"] for e in session]
        assert positions == sorted(positions)
    assert all(e["event_time"] <= NOW.replace(tzinfo=None) for e in events)


@pytest.mark.parametrize("option, value", [("events", 0), ("days", 366), ("users", 0), ("movies", 0)])
def test_bad_options_are_command_errors(option, value):
    with pytest.raises(CommandError, match=f"--{option}"):
        generate(**{option: value})
