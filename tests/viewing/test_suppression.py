"""The suppression list: a suppressed viewer's events are acknowledged on every way in (HTTP
single and batch, Kafka, generate_events), counted in the metrics and never stored."""

import random
import uuid
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections
from prometheus_client import REGISTRY

from tests.conftest import query
from tests.kafka_broker import event, make_loop
from viewing.generator import event_batches
from viewing.services import events_store
from viewing.suppression import suppressed_among, user_suppress


def suppress(user_id):
    with connections["clickhouse"].cursor() as cursor:
        user_suppress(cursor, user_id=user_id)


def metric(name, path):
    return REGISTRY.get_sample_value(name, {"path": path}) or 0.0


def row(user_id, **fields):
    return {
        "id": uuid.uuid4(), "user_id": user_id, "movie_id": uuid.uuid4(), "event_type": "start",
        "position_seconds": 0, "event_time": datetime.now(UTC).replace(tzinfo=None, microsecond=0),
        "session_id": None, "metadata": "{}", **fields,
    }


def users_stored():
    return {r[0]: r[1] for r in query("SELECT user_id, count() FROM viewing_events GROUP BY user_id")}


def test_a_suppressed_users_events_are_dropped_from_a_batch_and_counted(ch):
    erased, kept = uuid.uuid4(), uuid.uuid4()
    suppress(erased)
    before = {n: metric(n, "kafka") for n in (
        "analytics_events_suppressed_total", "analytics_events_duplicate_total", "analytics_events_ingested_total")}
    # Both spellings a caller may hand over: a UUID object and its text, upper case.
    batch = [row(erased), row(str(erased).upper()), row(kept), row(kept)]
    assert events_store(events=batch + batch[:1], path="kafka") == 2
    assert users_stored() == {kept: 2}
    assert query("SELECT count() FROM event_ids") == [(2,)]
    assert query("SELECT sum(events) FROM events_daily") == [(2,)]
    grown = {n: metric(n, "kafka") - v for n, v in before.items()}
    assert grown == {"analytics_events_suppressed_total": 2, "analytics_events_duplicate_total": 1,
                     "analytics_events_ingested_total": 2}


def test_a_batch_of_stored_and_suppressed_events_counts_each_once(ch):
    """Stored ids and suppressed viewers in one batch: nothing new, and the counters grow by what
    each was (a duplicate count computed from the kept events alone went negative here)."""
    erased, kept = uuid.uuid4(), uuid.uuid4()
    stored = row(kept)
    assert events_store(events=[stored], path="kafka") == 1
    suppress(erased)
    before = {n: metric(n, "kafka") for n in (
        "analytics_events_suppressed_total", "analytics_events_duplicate_total", "analytics_events_ingested_total")}
    assert events_store(events=[row(erased), row(erased), row(erased), stored], path="kafka") == 0
    grown = {n: metric(n, "kafka") - v for n, v in before.items()}
    assert grown == {"analytics_events_suppressed_total": 3, "analytics_events_duplicate_total": 1,
                     "analytics_events_ingested_total": 0}
    assert users_stored() == {kept: 1}


def test_the_list_is_the_table_read_on_every_write(ch):
    user = uuid.uuid4()
    assert events_store(events=[row(user)]) == 1
    # Written by another connection, as another process (or a restart) would find it.
    query("INSERT INTO suppressed_users (user_id, suppressed_at) VALUES (%(u)s, now())", {"u": user})
    assert events_store(events=[row(user)]) == 0
    with connections["clickhouse"].cursor() as cursor:
        assert suppressed_among(cursor, [user, uuid.uuid4()]) == {user}
        assert suppressed_among(cursor, []) == set()
    suppress(user)  # twice: still one user on the list
    assert query("SELECT DISTINCT user_id FROM suppressed_users") == [(user,)]
    # A list emptied and refilled with as many users is read again, not taken from memory.
    other = uuid.uuid4()
    query("TRUNCATE TABLE suppressed_users")
    suppress(other)
    assert events_store(events=[row(user), row(other)]) == 1
    assert users_stored() == {user: 2}


def test_http_single_and_batch_acknowledge_a_suppressed_user_but_store_nothing(ch, client):
    erased, kept = str(uuid.uuid4()), str(uuid.uuid4())
    suppress(erased)
    before = metric("analytics_events_suppressed_total", "http")
    body = {"user_id": erased, "movie_id": str(uuid.uuid4()), "event_type": "start"}
    single = client.post("/api/v1/analytics/events", body, content_type="application/json")
    assert single.status_code == 201 and single.json()["user_id"] == erased
    batch = client.post("/api/v1/analytics/events/batch", [body, {**body, "user_id": kept}, body],
                        content_type="application/json")
    assert batch.status_code == 201 and batch.json() == {"accepted": 3}
    assert users_stored() == {uuid.UUID(kept): 1}
    assert metric("analytics_events_suppressed_total", "http") - before == 3


@pytest.mark.kafka
def test_kafka_commits_a_suppressed_users_messages_without_storing_them(ch, kafka):
    rng = random.Random(3)
    erased, kept = uuid.uuid4(), uuid.uuid4()
    suppress(erased)
    for i in range(30):
        kafka.produce(kafka.topic("start"), event(rng, users=[erased if i % 3 else kept]))
    kafka.flush()
    before = metric("analytics_events_suppressed_total", "kafka")
    stats = make_loop(kafka, batch_size=500, flush_interval=0.2).run(exit_on_idle=1)
    assert stats["consumed"] == 30 and stats["dead_lettered"] == 0
    assert users_stored() == {kept: 10}
    assert metric("analytics_events_suppressed_total", "kafka") - before == 20
    assert kafka.committed(kafka.group()) == kafka.produced_offsets()


def test_generate_events_skips_suppressed_users(ch):
    options = dict(events=2000, days=2, users=20, movies=10, seed=4, batch_size=500)
    # The seed decides the users; the most active one is erased.
    generated = [e for b in event_batches(**options) for e in b]
    erased = max({e["user_id"] for e in generated}, key=[e["user_id"] for e in generated].count)
    suppress(erased)
    before = metric("analytics_events_suppressed_total", "generator")
    out = StringIO()
    call_command("generate_events", stdout=out, stderr=StringIO(), **options)
    dropped = metric("analytics_events_suppressed_total", "generator") - before
    stored = users_stored()
    # Every generated viewer but the erased one (how many the seed draws depends on the time
    # of day: shortly after midnight UTC, 19 of the 20).
    assert erased not in stored and len(stored) == len({e["user_id"] for e in generated}) - 1
    assert dropped > 0 and sum(stored.values()) == 2000 - dropped
    assert f"stored {2000 - int(dropped)} new" in out.getvalue()
