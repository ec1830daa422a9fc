"""What the erasure tests share: clients with scopes, posting and reading, the user's traces in
every table, the stored events (sessions and generated events over 10 days) and the check
that every endpoint answers as the plain-Python references."""

import random
import uuid
from datetime import timedelta

from django.test import Client

from analytics_site.access.models import ApiKey
from tests import reference
from tests import reference_engagement as engagement
from tests.conftest import query
from tests.engagement_data import random_sessions
from tests.generator import events_generate, payload
from viewing import ddl

BASE = "/api/v1/analytics"
ZONES = ["UTC", "Asia/Kathmandu", "America/New_York"]


def client_with(*scopes):
    secret = ApiKey.objects.create_key(name="t", **{f"can_{s}": True for s in scopes})[1]
    return Client(HTTP_AUTHORIZATION=f"Api-Key {secret}")


def naive(moment):
    return moment.replace(tzinfo=None)


def post_events(client, events, seed=1):
    rng = random.Random(seed)
    bodies = [payload(e, rng) for e in events]
    for start in range(0, len(bodies), 5000):
        response = client.post(f"{BASE}/events/batch", bodies[start : start + 5000], content_type="application/json")
        assert response.status_code == 201, response.content


def get(client, path, **params):
    response = client.get(f"{BASE}/{path}", params)
    assert response.status_code == 200, (path, params, response.content)
    return response.json()


def erase(client, user):
    response = client.delete(f"{BASE}/users/{user}")
    assert response.status_code == 200, response.content
    return response.json()


def facts(events):
    """expected_analytics' input (tests/kafka_broker.py) from generator events."""
    return [{"user_id": str(e.user_id), "movie_id": str(e.movie_id), "type": e.event_type,
             "position_seconds": e.position_seconds, "event_time": e.event_time} for e in events]


def traces(user_id, ids):
    """Rows left of the user anywhere in the schema: by user_id, or by event id."""
    found = {}
    for table in ddl.TABLES:
        if table.name == "suppressed_users":
            continue
        if "user_id" in table.column_names:
            (n,), = query(f"SELECT count() FROM {table.name} WHERE user_id = %(u)s", {"u": user_id})
        elif "id" in table.column_names:
            (n,), = query(
                f"SELECT count() FROM {table.name} WHERE id IN (SELECT toUUID(arrayJoin(splitByChar(',', %(ids)s))))",
                {"ids": ",".join(i.hex for i in ids) or "00000000000000000000000000000000"},
            )
        else:  # aggregates mixing users: checked against the reference instead
            continue
        if n:
            found[table.name] = n
    return found


def stored_events(client, frozen_now):
    """Sessions (engagement) and generated events (the four classic metrics) over 10 days,
    posted and counted (the `stored` fixture of the erasure tests)."""
    now = naive(frozen_now)
    events = random_sessions(now, seed=5, sessions=80) + events_generate(seed=8, count=700, now=now, days_back=9)
    post_events(client, events)
    assert query("SELECT count() FROM viewing_events") == [(len(events),)]
    return events


def busiest_session_user(events):
    with_session = [e.user_id for e in events if e.session_id is not None]
    return max(set(with_session), key=with_session.count)


def assert_every_endpoint_matches(client, events, today_of, users):
    """The analytics of `events` (the references) in every endpoint, windows and zones."""
    for tz in ZONES:
        today = today_of(tz)
        windows = [({"days": d}, reference.Window.of_days(d, today=today, tz=tz)) for d in (1, 3, 10, 30)]
        first, last = today - timedelta(days=6), today - timedelta(days=2)
        windows.append(({"from": first, "to": last}, reference.Window(first, last, tz)))
        for params, window in windows:
            params = {**params, "tz": tz}
            assert get(client, "content/popular", **params, limit=100) == reference.popular(
                events, window=window, limit=100)
            assert get(client, "trends", **params) == reference.trends(events, window=window)
            assert get(client, "peak-hours", **params) == reference.peak_hours(events, window=window)
            for user in users:
                assert get(client, f"user/{user}/stats", **params) == reference.user_stats(
                    events, user_id=user, window=window)
        window = windows[1][1]  # days=3
        assert get(client, "trends", days=3, tz=tz, interval="hour") == reference.trends(
            events, window=window, interval="hour")
    movies = sorted({e.movie_id for e in events}, key=str)
    for tz in ZONES:
        today = today_of(tz)
        for days in (1, 3, 10):
            first = today - timedelta(days=days - 1)
            assert get(client, "summary", days=days, tz=tz) == engagement.summary(
                events, first_day=first, last_day=today, tz=tz)
        first, last = today - timedelta(days=6), today - timedelta(days=1)
        window = {"from": first, "to": last, "tz": tz}
        assert get(client, "concurrency", **window, interval="hour") == engagement.concurrency(
            events, first_day=first, last_day=last, tz=tz, interval="hour")
        for movie in movies[:4]:
            assert get(client, f"content/{movie}/retention", **window) == engagement.retention(
                events, movie_id=movie, first_day=first, last_day=last, tz=tz)



def row(user_id, moment, **fields):
    return {"id": uuid.uuid4(), "user_id": user_id, "movie_id": fields.pop("movie_id", uuid.uuid4()),
            "event_type": fields.pop("event_type", "start"), "position_seconds": 0, "event_time": moment,
            "session_id": fields.pop("session_id", None), "metadata": "{}", **fields}



def raw_facts():
    """expected_analytics' input from what the raw table holds."""
    return [{"user_id": str(u), "movie_id": str(m), "type": t, "position_seconds": p, "event_time": at}
            for u, m, t, p, at in query(
                "SELECT user_id, movie_id, event_type, position_seconds, event_time FROM viewing_events")]

