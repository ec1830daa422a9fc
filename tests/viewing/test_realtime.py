"""Who is watching now: compared with the reference, counted within a second of the 201, and
read from the small recent-events table, never from the history."""

import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests import reference_engagement as reference
from tests.conftest import query
from tests.engagement_data import HIGH_TEXT, LOW_TEXT
from tests.generator import Event, payload
from viewing import clock
from viewing import queries_engagement as sql

BASE = "/api/v1/analytics"


@pytest.fixture
def now():
    """The clock frozen at the real time (the recent-events table keeps what is recent by the
    engine's own clock)."""
    moment = datetime.now(UTC).replace(microsecond=0)
    with clock.frozen(moment):
        yield moment.replace(tzinfo=None)


def realtime(client, **params):
    response = client.get(f"{BASE}/realtime", params)
    assert response.status_code == 200, response.content
    return response.json()


def recent_events(now):
    rng = random.Random(4)
    users = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(5)]
    movies = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(3)] + [LOW_TEXT, HIGH_TEXT]
    events = []

    def add(user, movie, kind, seconds_ago, session):
        events.append(Event(id=uuid.UUID(int=rng.getrandbits(128), version=4), user_id=user, movie_id=movie,
                            event_type=kind, position_seconds=rng.randrange(7200),
                            event_time=now - timedelta(seconds=seconds_ago), session_id=session))

    # Ties: LOW_TEXT and HIGH_TEXT have two live views each.
    for movie in (LOW_TEXT, HIGH_TEXT):
        for k in range(2):
            session = uuid.uuid4()
            add(users[k], movie, "start", 200, session)
            add(users[k], movie, "progress", 0, session)
    # A finish inside the window: not live. Its start before the window does not matter.
    session = uuid.uuid4()
    add(users[2], movies[0], "start", 4000, session)
    add(users[2], movies[0], "progress", 100, session)
    add(users[2], movies[0], "finish", 30, session)
    # Finished before the window: its later events alone form a live view.
    session = uuid.uuid4()
    add(users[3], movies[1], "finish", 900, session)
    add(users[3], movies[1], "progress", 50, session)
    # Exactly at the window's edges: `as_of - window` is out, `as_of` in.
    for seconds in (60, 300, 3600, 0):
        add(users[4], movies[2], "progress", seconds, uuid.uuid4())
    # Without a session: not a view.
    add(users[0], movies[2], "start", 10, None)
    # Random sessions of the last two hours.
    for _ in range(40):
        session = uuid.uuid4() if rng.random() < 0.9 else None
        user, movie = rng.choice(users), rng.choice(movies)
        for _ in range(rng.randint(1, 4)):
            add(user, movie, rng.choice(["start", "progress", "progress", "finish"]), rng.randrange(7000), session)
    return events


def test_realtime_matches_the_reference(ch, client, now):
    events = recent_events(now)
    rng = random.Random(2)
    response = client.post(f"{BASE}/events/batch", [payload(e, rng) for e in events], content_type="application/json")
    assert response.status_code == 201
    for window in (60, 61, 299, 300, 900, 3600):
        assert realtime(client, window=window) == reference.realtime(events, as_of=now, window=window), window
    assert realtime(client) == reference.realtime(events, as_of=now, window=300)
    # A tie is ordered by the id as text (ClickHouse's own UUID order would put HIGH_TEXT first).
    top = {t["movie_id"]: (i, t["live_views"]) for i, t in enumerate(realtime(client, window=300)["top_movies"])}
    assert top[str(LOW_TEXT)][1] == top[str(HIGH_TEXT)][1] == 2
    assert top[str(LOW_TEXT)][0] < top[str(HIGH_TEXT)][0]


def post_event(client, **fields):
    response = client.post(f"{BASE}/events", fields, content_type="application/json")
    assert response.status_code == 201, response.content
    return time.monotonic()


def test_counted_within_a_second_of_the_201(ch, client):
    """On the real clock: the event stored without a time (the time of receipt) counts at once,
    and its view stops counting as soon as its finish is stored."""
    user, movie, session = (str(uuid.uuid4()) for _ in range(3))
    stored = post_event(client, user_id=user, movie_id=movie, session_id=session, event_type="start")
    body = realtime(client)
    assert time.monotonic() - stored < 1
    assert (body["live_views"], body["viewers"], body["top_movies"]) == (1, 1, [{"movie_id": movie, "live_views": 1}])
    stored = post_event(client, user_id=user, movie_id=movie, session_id=session, event_type="stop",
                        position_seconds=60)
    body = realtime(client)
    assert time.monotonic() - stored < 1
    assert (body["live_views"], body["viewers"], body["top_movies"]) == (0, 0, [])


def test_as_of_is_now(ch, client, now):
    body = realtime(client, window=60)
    assert (body["as_of"], body["window_seconds"]) == (now.strftime("%Y-%m-%dT%H:%M:%SZ"), 60)


def test_history_stays_out_of_the_recent_table(ch, client, now):
    user, movie = uuid.uuid4(), uuid.uuid4()
    old = [{"user_id": str(user), "movie_id": str(movie), "event_type": "start", "session_id": str(uuid.uuid4()),
            "event_time": (now - timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ")} for h in (3, 30, 24 * 100)]
    recent = {**old[0], "event_time": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert client.post(f"{BASE}/events/batch", [*old, recent], content_type="application/json").status_code == 201
    assert query("SELECT count() FROM viewing_events") == [(4,)]
    assert query("SELECT count() FROM recent_events") == [(1,)]
    # The read is a range of recent_events' sort key (time), whatever the table holds.
    plan = "\n".join(row[0] for row in query(
        "EXPLAIN indexes = 1 " + sql.REALTIME, {"since": now - timedelta(seconds=300), "as_of": now}))
    assert "recent_events" in plan and "viewing_events" not in plan
    assert "PrimaryKey" in plan and "event_time" in plan


@pytest.mark.parametrize("window", ["59", "3601", "0", "abc", "300.5"])
def test_window_out_of_range_is_a_400(ch, client, window):
    response = client.get(f"{BASE}/realtime", {"window": window})
    assert response.status_code == 400
    assert list(response.json()) == ["window"]
