"""Erasing a viewer: every endpoint then answers as the plain-Python references computed without
that viewer (several windows and zones), no table keeps a trace, erasing again removes 0, the
viewer does not come back over HTTP, Kafka or an insert racing the erasure. The command, the
records, the scopes and the registry's rules: test_erasure_ops.py."""

import io
import random
import threading
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connections

from analytics_site.access.models import ApiKey
from analytics_site.privacy.models import ErasureRecord
from tests import reference_engagement as engagement
from tests.conftest import query
from tests.generator import payload
from tests.kafka_broker import expected_analytics, make_loop, stored_analytics
from tests.viewing.erasure_support import (
    BASE,
    assert_every_endpoint_matches,
    busiest_session_user,
    client_with,
    erase,
    facts,
    naive,
    row,
    stored_events,
    traces,
)
from viewing import queries
from viewing.ingest_buffer import event_ingest
from viewing.services import events_store
from viewing.suppression import suppression_recheck


@pytest.fixture
def stored(ch, client, frozen_now):
    return stored_events(client, frozen_now)


def test_after_an_erasure_every_endpoint_answers_as_without_the_user(stored, client, frozen_now):
    events = stored
    erased = busiest_session_user(events)
    theirs = [e for e in events if e.user_id == erased]
    rest = [e for e in events if e.user_id != erased]
    assert len(theirs) > 20 and {e.event_time.date() for e in theirs} != {frozen_now.date()}
    before = stored_analytics(query)
    assert before == expected_analytics(facts(events))

    assert erase(client_with("erase"), erased) == {"user_id": str(erased), "events_deleted": len(theirs)}

    assert traces(erased, [e.id for e in theirs]) == {}
    assert stored_analytics(query) == expected_analytics(facts(rest))
    other = next(e.user_id for e in rest)

    def today_of(tz):
        return engagement.local(naive(frozen_now), tz).date()

    assert_every_endpoint_matches(client, rest, today_of, users=[erased, other])
    # Exports know nothing of the user either.
    exporter = client_with("export")
    response = exporter.get(f"{BASE}/users/{erased}/events")
    assert b"".join(response.streaming_content) == b""


def test_erasing_again_removes_nothing_and_both_are_recorded(stored, client):
    erased = busiest_session_user(stored)
    theirs = sum(e.user_id == erased for e in stored)
    eraser = client_with("erase")
    assert erase(eraser, erased)["events_deleted"] == theirs
    state = stored_analytics(query)
    assert erase(eraser, str(erased).upper().replace("-", "")) == {"user_id": str(erased), "events_deleted": 0}
    assert stored_analytics(query) == state
    key = ApiKey.objects.get(name="t", can_erase=True)
    records = list(ErasureRecord.objects.order_by("id").values_list("user_id", "events_deleted", "requested_by",
                                                                   "api_key_prefix"))
    assert records == [(erased, theirs, f"API key {key.prefix} (t)", key.prefix),
                       (erased, 0, f"API key {key.prefix} (t)", key.prefix)]
    assert all(r.seconds >= 0 for r in ErasureRecord.objects.all())


def test_the_users_events_sent_again_over_http_are_acknowledged_and_not_stored(stored, client):
    erased = busiest_session_user(stored)
    theirs = [e for e in stored if e.user_id == erased]
    erase(client_with("erase"), erased)
    state = stored_analytics(query)
    rng = random.Random(2)
    bodies = [payload(e, rng) for e in theirs]
    batch = client.post(f"{BASE}/events/batch", bodies, content_type="application/json")
    assert batch.status_code == 201 and batch.json() == {"accepted": len(bodies)}
    for body in bodies[:3]:
        assert client.post(f"{BASE}/events", body, content_type="application/json").status_code == 201
    new = {**bodies[0], "id": str(uuid.uuid4())}  # new activity, too
    assert client.post(f"{BASE}/events", new, content_type="application/json").status_code == 201
    assert stored_analytics(query) == state
    assert traces(erased, [e.id for e in theirs]) == {}


@pytest.mark.kafka
def test_the_users_events_replayed_from_kafka_are_committed_and_not_stored(ch, kafka):
    rng = random.Random(9)
    erased, kept = uuid.uuid4(), uuid.uuid4()
    movie = uuid.uuid4()
    sent = []
    for i in range(40):
        value = {"user_id": str(erased if i % 2 else kept), "movie_id": str(movie), "action": "start",
                 "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
        kafka.produce(kafka.topic("start"), value)
        sent.append(value)
    kafka.flush()

    def consume(group):
        return make_loop(kafka, group, batch_size=500, flush_interval=0.2).run(exit_on_idle=1)

    assert consume("first")["stored"] == 40
    call_command("erase_user", str(erased), stdout=io.StringIO())
    state = stored_analytics(query)
    # A new consumer group reads the topic from the start: every message again.
    stats = consume("replay")
    assert stats["consumed"] == 40 and stats["stored"] == 0
    assert kafka.committed(kafka.group("replay")) == kafka.produced_offsets()
    assert stored_analytics(query) == state
    assert query("SELECT count() FROM viewing_events WHERE user_id = %(u)s", {"u": erased}) == [(0,)]
    assert query("SELECT count() FROM viewing_events") == [(20,)]


def test_an_ingest_running_during_the_erasure_cannot_bring_the_user_back(stored, frozen_now):
    erased = busiest_session_user(stored)
    now = naive(frozen_now)
    others = [uuid.uuid4() for _ in range(3)]
    movie = uuid.uuid4()
    acknowledged = []  # (user, moment, event_type) of every other user's acknowledged event
    stop = threading.Event()
    errors = []

    def batches():
        rng = random.Random(4)
        try:
            while not stop.is_set():
                batch = [row(rng.choice(others + [erased]), now - timedelta(minutes=rng.randrange(600)),
                             movie_id=movie) for _ in range(50)]
                events_store(events=batch)
                acknowledged.extend(e for e in batch if e["user_id"] != erased)
        except Exception as e:  # surfaced below
            errors.append(e)
        finally:
            connections.close_all()

    def singles():
        try:
            while not stop.is_set():
                event = row(erased, now - timedelta(minutes=1), movie_id=movie, session_id=uuid.uuid4())
                event_ingest(event=event)
        except Exception as e:
            errors.append(e)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=batches), threading.Thread(target=singles)]
    for t in threads:
        t.start()
    try:
        call_command("erase_user", str(erased), stdout=io.StringIO())
        stop.wait(0.5)  # the writers go on after the erasure, too
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert errors == [] and len(acknowledged) > 50
    assert query("SELECT count() FROM viewing_events WHERE user_id = %(u)s", {"u": erased}) == [(0,)]
    rest = [e for e in stored if e.user_id != erased]
    expected = facts(rest) + [{"user_id": str(e["user_id"]), "movie_id": str(e["movie_id"]), "type": "start",
                               "position_seconds": 0, "event_time": e["event_time"]} for e in acknowledged]
    assert stored_analytics(query) == expected_analytics(expected)
    assert traces(erased, []) == {}


def test_a_racing_insert_on_a_server_is_erased_by_the_writers_recheck(ch, frozen_now):
    """Several processes on a ClickHouse server: one stored the user's events after another
    suppressed and erased them. The re-check after its insert finds and erases them."""
    user, other = uuid.uuid4(), uuid.uuid4()
    now = naive(frozen_now)
    kept = row(other, now)
    events_store(events=[row(user, now), kept])
    call_command("erase_user", str(user), stdout=io.StringIO())
    # The other process's insert, which had checked the list before the erasure.
    late = row(user, now - timedelta(hours=1), session_id=uuid.uuid4())
    with connections["clickhouse"].cursor() as cursor:
        cursor.executemany(queries.INSERT_EVENTS, [tuple(late[c] for c in queries.EVENT_COLUMNS[:-1]) + (now,)])
    assert query("SELECT count() FROM viewing_events WHERE user_id = %(u)s", {"u": user}) == [(1,)]
    assert suppression_recheck(users=[other], embedded=False) == []
    assert suppression_recheck(users=[user, other], embedded=False) == [user]
    assert traces(user, [late["id"]]) == {}
    assert stored_analytics(query) == expected_analytics([
        {"user_id": str(other), "movie_id": str(kept["movie_id"]), "type": "start", "position_seconds": 0,
         "event_time": now}])
    assert ErasureRecord.objects.filter(requested_by__startswith="write path").count() == 1


def test_an_erasure_repeated_after_a_crash_mends_the_aggregates(stored, client):
    """The first attempt died after deleting the raw rows: the second finds the dates from the
    per-user aggregates and mends every aggregate."""
    erased = busiest_session_user(stored)
    query("DELETE FROM viewing_events WHERE user_id = %(u)s", {"u": erased})
    assert erase(client_with("erase"), erased)["events_deleted"] == 0
    rest = [e for e in stored if e.user_id != erased]
    assert stored_analytics(query) == expected_analytics(facts(rest))
    assert traces(erased, []) == {}
