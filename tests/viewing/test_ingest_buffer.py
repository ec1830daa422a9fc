"""The single-event buffer: shared inserts, return only once stored, errors reach every caller."""

import threading
import time
import uuid
from datetime import datetime

import pytest
from django.db import DatabaseError, connections

from tests.conftest import query
from viewing.ingest_buffer import SERVER_INSERT_SETTINGS, IngestBuffer


def row(**changes):
    event = {
        "id": uuid.uuid4(),
        "user_id": uuid.uuid4(),
        "movie_id": uuid.uuid4(),
        "event_type": "start",
        "position_seconds": 0,
        "event_time": datetime(2026, 11, 27, 12, 0),
        "session_id": None,
        "metadata": "{}",
    }
    event.update(changes)
    return event


def submit_concurrently(buffer, events):
    """Submit each event from its own thread; returns what each thread saw (None or error)."""
    outcomes = [None] * len(events)
    start = threading.Barrier(len(events))

    def worker(i):
        start.wait()
        try:
            buffer.submit(events[i])
            # Stored by the time submit returns: visible from this thread's own connection.
            if query("SELECT count() FROM viewing_events WHERE id = %(id)s", {"id": events[i]["id"]}) != [(1,)]:
                outcomes[i] = AssertionError("not visible after submit returned")
        except Exception as e:
            outcomes[i] = e
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(events))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outcomes


def test_an_idle_buffer_stores_at_once(ch):
    buffer = IngestBuffer(interval=60.0, max_events=100)  # an interval a test would notice
    event = row()
    assert buffer.submit(event) is event
    assert buffer.flushes == 1
    assert query("SELECT id FROM viewing_events") == [(event["id"],)]


def test_concurrent_events_share_inserts_and_are_all_stored(ch):
    buffer = IngestBuffer(interval=0.2, max_events=1000)
    events = [row() for _ in range(40)]
    assert submit_concurrently(buffer, events) == [None] * 40
    assert query("SELECT count() FROM viewing_events") == [(40,)]
    # 40 requests, far fewer inserts: the first flush goes at once, the rest wait their turn.
    assert buffer.flushes <= 5


def test_a_full_buffer_flushes_without_waiting_for_the_interval(ch):
    buffer = IngestBuffer(interval=3600.0, max_events=10)
    buffer.submit(row())  # the idle flush; the next one would otherwise wait an hour
    events = [row() for _ in range(10)]
    assert submit_concurrently(buffer, events) == [None] * 10
    assert buffer.flushes == 2


def test_an_insert_error_reaches_every_caller_of_that_flush(ch):
    buffer = IngestBuffer(interval=0.0, max_events=100)
    broken = row(position_seconds=2**40)  # does not fit UInt32: the whole insert fails
    with pytest.raises(DatabaseError, match="position_seconds"):
        buffer.submit(broken)
    assert query("SELECT count() FROM viewing_events") == [(0,)]
    # The buffer is not stuck: the next event goes in.
    buffer.submit(row())
    assert query("SELECT count() FROM viewing_events") == [(1,)]



def test_the_server_insert_settings_still_store_synchronously(ch):
    # What a buffer on a ClickHouse server sends; with wait_for_async_insert=1 the event is
    # stored (and de-duplicated) by the time the insert returns.
    buffer = IngestBuffer(interval=0.0, max_events=100, insert_settings=SERVER_INSERT_SETTINGS)
    event = row()
    buffer.submit(event)
    buffer.submit(dict(event))  # a re-sent id
    assert query("SELECT count() FROM viewing_events WHERE id = %(id)s", {"id": event["id"]}) == [(1,)]


def test_waiting_requests_are_woken_for_their_own_flush_not_for_every_event(ch):
    # 60 requests arriving together: each thread wakes about once (its flush is done, or it
    # leads the next one), not once for every event that arrives while it waits.
    buffer = IngestBuffer(interval=0.3, max_events=1000)
    buffer.submit(row())  # the idle flush: the next ones wait for the interval, together
    events = [row() for _ in range(60)]
    assert submit_concurrently(buffer, events) == [None] * 60
    assert query("SELECT count() FROM viewing_events") == [(61,)]
    assert buffer.wakeups <= 2 * 60 + 2 * buffer.flushes


def test_under_a_steady_arrival_rate_the_inserts_a_second_are_bounded_by_the_interval(ch):
    # An open loop in one process: 24 players, each sending an event every 40 ms for ~1.2 s
    # (600 events/s), each waiting for its own to be stored. However fast they arrive, a flush
    # starts at most every `interval`, so the inserts are bounded by time, not by events.
    buffer = IngestBuffer(interval=0.3, max_events=1000)
    players, every, seconds = 24, 0.04, 1.2
    sent, failures, lock = [], [], threading.Lock()
    start = time.monotonic() + 0.05

    def player(p):
        try:
            for k in range(int(seconds / every)):
                due = start + k * every + p * every / players
                time.sleep(max(0.0, due - time.monotonic()))  # the arrival schedule, not data
                event = row()
                buffer.submit(event)
                with lock:
                    sent.append(event["id"])
        except Exception as e:
            failures.append(e)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=player, args=(p,)) for p in range(players)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    elapsed = time.monotonic() - start
    assert failures == [] and len(sent) == players * int(seconds / every)
    assert query("SELECT count() FROM viewing_events") == [(len(sent),)]
    assert buffer.flushes <= elapsed / 0.3 + 2
    assert len(sent) / buffer.flushes >= 10  # grouped: many events an insert
