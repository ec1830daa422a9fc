"""Every analytics endpoint compared with the plain-Python reference (tests/reference.py).

The events are sent through the HTTP API, in every spelling and time format.
"""

import random
import uuid
from datetime import datetime, timedelta

import pytest

from tests import reference
from tests.conftest import query
from tests.generator import SPELLINGS, TIME_FORMATS, Event, events_generate, payload, seeded_uuid

BASE = "/api/v1/analytics"

# Ids whose order as text and ClickHouse's UUID order (which compares the second 64-bit half
# first) disagree: a tie broken by the wrong order would show.
LOW_TEXT = uuid.UUID("00000000-0000-4000-bfff-ffffffffffff")
HIGH_TEXT = uuid.UUID("ffffffff-ffff-4fff-8000-000000000000")


def post_batch(client, bodies):
    response = client.post(f"{BASE}/events/batch", bodies, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json() == {"accepted": len(bodies)}


def get(client, path, **params):
    response = client.get(f"{BASE}/{path}", params)
    assert response.status_code == 200, response.content
    return response.json()


def assert_all_match(client, events, today, *, days_list=(1, 2, 7, 30), users=()):
    for days in days_list:
        window = reference.Window.of_days(days, today=today)
        for limit in (1, 3, 100):
            assert get(client, "content/popular", days=days, limit=limit) == reference.popular(
                events, window=window, limit=limit
            )
        assert get(client, "trends", days=days) == reference.trends(events, window=window)
        assert get(client, "peak-hours", days=days) == reference.peak_hours(events, window=window)
        for user in users:
            assert get(client, f"user/{user}/stats", days=days) == reference.user_stats(
                events, user_id=user, window=window
            )


def naive(moment):
    return moment.replace(tzinfo=None)


@pytest.mark.slow
def test_generated_events_match_the_reference(ch, client, frozen_now):
    events = events_generate(seed=7, count=1500, now=naive(frozen_now), days_back=9)
    rng = random.Random(11)
    bodies = [payload(e, rng) for e in events]
    post_batch(client, bodies[:1000])
    for body in bodies[1000:1030]:  # some through the single-event endpoint
        assert client.post(f"{BASE}/events", body, content_type="application/json").status_code == 201
    post_batch(client, bodies[1030:])
    post_batch(client, bodies[:200])  # re-sent: counted once
    assert query("SELECT count() FROM viewing_events") == [(len(events),)]
    users = sorted({e.user_id for e in events})[:4] + [uuid.uuid4()]
    assert_all_match(client, events, frozen_now.date(), days_list=(1, 2, 3, 7, 9, 10, 30), users=users)


def test_default_parameters_match_the_reference(ch, client, frozen_now):
    events = events_generate(seed=3, count=300, now=naive(frozen_now), days_back=40)
    rng = random.Random(3)
    post_batch(client, [payload(e, rng) for e in events])
    today = frozen_now.date()
    week, month = reference.Window.of_days(7, today=today), reference.Window.of_days(30, today=today)
    assert get(client, "content/popular") == reference.popular(events, window=week)
    assert get(client, "trends") == reference.trends(events, window=week)
    assert get(client, "peak-hours") == reference.peak_hours(events, window=week)
    user = events[0].user_id
    assert get(client, f"user/{user}/stats") == reference.user_stats(events, user_id=user, window=month)


def test_window_edges_at_utc_midnight(ch, client, frozen_now):
    today = frozen_now.date()
    midnight = datetime.combine(today, datetime.min.time())
    user, movie = uuid.uuid4(), uuid.uuid4()
    rng = random.Random(1)
    moments = [
        midnight,  # first second of today: in days=1
        midnight - timedelta(seconds=1),  # last second of yesterday: only from days=2
        midnight - timedelta(days=1),  # first second of yesterday
        midnight - timedelta(days=1, seconds=1),  # only from days=3
        midnight + timedelta(days=1) - timedelta(seconds=1),  # 23:59:59 today, 2 min ahead
        midnight + timedelta(days=1, seconds=30),  # tomorrow (accepted, < 5 min ahead): in no window
    ]
    events = [
        Event(id=seeded_uuid(rng), user_id=user, movie_id=movie, event_type=t, position_seconds=60, event_time=m)
        for m in moments
        for t in ("start", "finish")
    ]
    post_batch(client, [payload(e, rng, time_format="iso_z") for e in events])
    assert_all_match(client, events, today, days_list=(1, 2, 3), users=[user])
    # The reference and the service agree; check the edges themselves too.
    assert get(client, "content/popular", days=1)["items"][0]["total_views"] == 2
    assert get(client, "content/popular", days=2)["items"][0]["total_views"] == 4
    day1 = get(client, "trends", days=1)["trends"]
    assert [d["date"] for d in day1] == [today.isoformat()] and day1[0]["total_events"] == 4
    assert get(client, "peak-hours", days=1)["peak_hour"] == 0  # 00:00 and 23:59 tie: earliest


def test_ties_in_ordering_go_to_the_smaller_id_as_text(ch, client, frozen_now):
    now = naive(frozen_now)
    rng = random.Random(2)
    viewer, other = uuid.uuid4(), uuid.uuid4()
    events = [
        Event(id=seeded_uuid(rng), user_id=u, movie_id=m, event_type="start", position_seconds=0, event_time=now)
        for m in (HIGH_TEXT, LOW_TEXT)
        for u in (viewer, other)
    ]
    post_batch(client, [payload(e, rng) for e in events])
    items = get(client, "content/popular", days=1)["items"]
    assert [i["movie_id"] for i in items] == [str(LOW_TEXT), str(HIGH_TEXT)]
    assert get(client, f"user/{viewer}/stats", days=1)["most_watched_movie_id"] == str(LOW_TEXT)
    assert_all_match(client, events, now.date(), days_list=(1,), users=[viewer, other])


def test_more_viewers_break_a_tie_in_views(ch, client, frozen_now):
    now = naive(frozen_now)
    rng = random.Random(4)
    one, two = uuid.uuid4(), uuid.uuid4()
    starts = [(LOW_TEXT, one), (LOW_TEXT, one), (HIGH_TEXT, one), (HIGH_TEXT, two)]
    events = [
        Event(id=seeded_uuid(rng), user_id=u, movie_id=m, event_type="start", position_seconds=0, event_time=now)
        for m, u in starts
    ]
    post_batch(client, [payload(e, rng) for e in events])
    items = get(client, "content/popular", days=1)["items"]
    assert [(i["movie_id"], i["unique_viewers"]) for i in items] == [(str(HIGH_TEXT), 2), (str(LOW_TEXT), 1)]
    assert_all_match(client, events, now.date(), days_list=(1,), users=[one, two])


def test_more_finishes_than_starts_caps_rates_at_100(ch, client, frozen_now):
    now = naive(frozen_now)
    rng = random.Random(5)
    user, movie = uuid.uuid4(), uuid.uuid4()
    # The start was yesterday, the finishes today: in a 1-day window 0 starts / 2 finishes
    # (no item, rate 0.0), and with the day before, 1 start / 3 finishes (capped).
    timeline = [("start", now - timedelta(days=1)), ("finish", now - timedelta(days=1)),
                ("finish", now), ("finish", now), ("progress", now)]
    events = [
        Event(id=seeded_uuid(rng), user_id=user, movie_id=movie, event_type=t, position_seconds=100, event_time=m)
        for t, m in timeline
    ]
    post_batch(client, [payload(e, rng) for e in events])
    assert get(client, "content/popular", days=2)["items"][0]["completion_rate"] == 100.0
    stats = get(client, f"user/{user}/stats", days=1)
    assert (stats["movies_started"], stats["movies_finished"], stats["completion_rate"]) == (0, 2, 0.0)
    assert stats["most_watched_movie_id"] is None
    assert get(client, f"user/{user}/stats", days=2)["completion_rate"] == 100.0
    assert_all_match(client, events, now.date(), days_list=(1, 2), users=[user])


def test_rates_round_half_up(ch, client, frozen_now):
    now = naive(frozen_now)
    rng = random.Random(6)
    user, movie = uuid.uuid4(), uuid.uuid4()
    # 1 / 32 = 3.125 %: half up gives 3.13 (binary-float round() would give 3.12).
    types = ["start"] * 32 + ["finish"]
    events = [
        Event(id=seeded_uuid(rng), user_id=user, movie_id=movie, event_type=t, position_seconds=7, event_time=now)
        for t in types
    ]
    post_batch(client, [payload(e, rng) for e in events])
    assert get(client, "content/popular", days=1)["items"][0]["completion_rate"] == 3.13
    assert get(client, f"user/{user}/stats", days=1)["completion_rate"] == 3.13
    assert_all_match(client, events, now.date(), days_list=(1,), users=[user])


def test_nothing_stored_gives_zeros_everywhere(ch, client, frozen_now):
    user = uuid.uuid4()
    for days in (1, 7, 365):
        window = reference.Window.of_days(days, today=frozen_now.date())
        assert get(client, "content/popular", days=days) == {"items": [], **window.fields(), "total_items": 0}
        trend = get(client, "trends", days=days)["trends"]
        assert len(trend) == days and not any(d["total_events"] for d in trend)
        peak = get(client, "peak-hours", days=days)
        assert peak["peak_hour"] is None and [h["hour"] for h in peak["peak_hours"]] == list(range(24))
        stats = get(client, f"user/{user}/stats", days=days)
        assert stats == reference.user_stats([], user_id=user, window=window)
        assert stats["most_watched_movie_id"] is None and stats["movies_started"] == 0


@pytest.mark.parametrize("event_type", sorted({s for spellings in SPELLINGS.values() for s in spellings}))
def test_each_spelling_is_stored_canonically(ch, client, frozen_now, event_type):
    canonical = next(c for c, spellings in SPELLINGS.items() if event_type in spellings)
    body = {"user_id": str(uuid.uuid4()), "movie_id": str(uuid.uuid4()), "event_type": event_type}
    response = client.post(f"{BASE}/events", body, content_type="application/json")
    assert response.status_code == 201
    assert response.json()["event_type"] == canonical
    assert response.json()["position_seconds"] == 0  # the default when absent
    assert query("SELECT event_type, position_seconds FROM viewing_events") == [(canonical, 0)]


@pytest.mark.parametrize("time_format", TIME_FORMATS)
def test_each_time_format_is_stored_in_utc(ch, client, frozen_now, time_format):
    rng = random.Random(time_format)
    moment = naive(frozen_now) - (timedelta(0) if time_format == "absent" else timedelta(hours=30, seconds=7))
    event = Event(
        id=uuid.uuid4(), user_id=uuid.uuid4(), movie_id=uuid.uuid4(), event_type="start",
        position_seconds=5, event_time=moment, session_id=uuid.uuid4(), metadata={"device": "tv"},
    )
    body = payload(event, rng, time_format=time_format)
    response = client.post(f"{BASE}/events", body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["event_time"] == moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert query("SELECT event_time FROM viewing_events") == [(moment,)]


SESSION = "6a1f7e2c-0d3b-4c5a-9e8f-7b6a5c4d3e21"


@pytest.mark.parametrize(
    "extra, session, metadata_text",
    [
        ({}, None, "{}"),
        ({"session_id": None, "metadata": None}, None, "{}"),
        ({"session_id": SESSION, "metadata": {}}, SESSION, "{}"),
        ({"session_id": SESSION, "metadata": {"device": "tv", "ab": [1, 2]}}, SESSION, '{"device":"tv","ab":[1,2]}'),
    ],
    ids=["neither", "nulls", "session-empty-metadata", "session-metadata"],
)
def test_session_and_metadata_are_optional_and_returned(ch, client, frozen_now, extra, session, metadata_text):
    user, movie = uuid.uuid4(), uuid.uuid4()
    body = {"user_id": str(user), "movie_id": str(movie), "event_type": "start", **extra}
    stored = client.post(f"{BASE}/events", body, content_type="application/json").json()
    assert stored["session_id"] == session
    assert stored["metadata"] == (extra.get("metadata") or {})
    assert set(stored) == {"id", "user_id", "movie_id", "event_type", "position_seconds", "event_time",
                           "session_id", "metadata"}
    rows = query("SELECT session_id, metadata FROM viewing_events")
    assert [(str(s) if s else None, m) for s, m in rows] == [(session, metadata_text)]
    stats = get(client, f"user/{user}/stats", days=1)
    assert stats["movies_started"] == 1 and stats["most_watched_movie_id"] == str(movie)


def test_a_resent_single_event_is_counted_once(ch, client, frozen_now):
    body = {"id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "movie_id": str(uuid.uuid4()),
            "event_type": "start"}
    for _ in range(3):
        assert client.post(f"{BASE}/events", body, content_type="application/json").status_code == 201
    assert query("SELECT count() FROM viewing_events") == [(1,)]
    assert get(client, "content/popular", days=1)["items"][0]["total_views"] == 1
