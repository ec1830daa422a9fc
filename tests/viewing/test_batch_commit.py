"""Group commit of HTTP batches: concurrent batches share an insert, each returns only once its
events are stored, and a failed insert fails every batch in it with nothing stored."""

import signal
import threading
import time
import uuid
from datetime import datetime

import pytest
from django.db import DatabaseError, connections

from tests.conftest import query
from tests.viewing.test_api_server import post, server  # noqa: F401 (a fixture)
from viewing import services
from viewing.batch_commit import BatchGroupCommit


def rows(count, **changes):
    return [
        {
            "id": uuid.uuid4(),
            "user_id": uuid.uuid4(),
            "movie_id": uuid.uuid4(),
            "event_type": "start",
            "position_seconds": 0,
            "event_time": datetime(2026, 11, 27, 12, 0),
            "session_id": None,
            "metadata": "{}",
            **changes,
        }
        for _ in range(count)
    ]


def stored_count():
    return query("SELECT count() FROM viewing_events")[0][0]


def submit_in_threads(group, batches):
    """Submit each batch from its own thread, in order, each after the previous one is waiting;
    returns what each saw: None (returned, and its events visible then) or the error."""
    outcomes = [None] * len(batches)

    def worker(i):
        try:
            group.submit(batches[i])
            ids = [str(e["id"]) for e in batches[i]]
            found = query("SELECT count() FROM viewing_events WHERE toString(id) IN %(ids)s", {"ids": tuple(ids)})
            if found != [(len(ids),)]:
                outcomes[i] = AssertionError("not stored when submit returned")
        except Exception as e:
            outcomes[i] = e
        finally:
            connections.close_all()

    threads = []
    for i in range(len(batches)):
        threads.append(threading.Thread(target=worker, args=(i,)))
        threads[-1].start()
        time.sleep(0.2)  # the first leads (and waits for the store lock), the others queue
    return threads, outcomes


def test_a_lone_batch_is_stored_at_once_in_one_insert(ch):
    group = BatchGroupCommit()
    group.submit(rows(3))
    assert (group.inserts, group.requests) == (1, 1)
    assert stored_count() == 3


def test_batches_waiting_while_an_insert_runs_share_the_next_insert(ch):
    group = BatchGroupCommit()
    batches = [rows(5) for _ in range(4)]
    # The store lock held: the first batch's insert cannot start, so the next three wait for it.
    with services.writes_paused():
        threads, outcomes = submit_in_threads(group, batches)
        assert stored_count() == 0  # nothing stored yet, so nothing returned
        assert not any(t.join(timeout=0) or not t.is_alive() for t in threads)
    for t in threads:
        t.join(timeout=30)
    assert outcomes == [None] * 4
    assert (group.inserts, group.requests) == (2, 4)  # the first alone, then the other three at once
    assert stored_count() == 20


def test_a_group_holds_at_most_max_events(ch):
    group = BatchGroupCommit(max_events=10)
    batches = [rows(4) for _ in range(5)]
    with services.writes_paused():
        threads, outcomes = submit_in_threads(group, batches)
    for t in threads:
        t.join(timeout=30)
    assert outcomes == [None] * 5
    # The first alone; then 4 + 4 (a third would make 12), then the last 4.
    assert (group.inserts, group.requests) == (3, 5)
    assert stored_count() == 20


def test_a_group_waits_for_a_batch_still_being_checked_then_stores_both_at_once(ch):
    group = BatchGroupCommit(arrival_wait=30.0)
    first, second = rows(2), rows(3)
    done = threading.Event()
    with group.arrival() as store_second:  # a request on its way (its body being checked)
        def lead():
            group.submit(first)
            connections.close_all()
            done.set()

        leader = threading.Thread(target=lead)
        leader.start()
        assert not done.wait(0.5)  # the leader waits for the arriving batch...
        assert stored_count() == 0
        store_second(second)  # ...which joins it: one insert for both
    leader.join(timeout=30)
    assert done.is_set() and (group.inserts, group.requests) == (1, 2)
    assert stored_count() == 5


def test_a_refused_arrival_releases_the_waiting_group_and_the_wait_is_bounded(ch):
    group = BatchGroupCommit(arrival_wait=30.0)
    started = time.monotonic()
    with pytest.raises(ValueError), group.arrival():
        leader = threading.Thread(target=lambda: (group.submit(rows(1)), connections.close_all()))
        leader.start()
        time.sleep(0.3)
        raise ValueError("an invalid batch: nothing to store")
    leader.join(timeout=30)
    assert not leader.is_alive() and time.monotonic() - started < 20
    assert stored_count() == 1
    # The wait for an arrival that never comes is bounded by arrival_wait.
    group = BatchGroupCommit(arrival_wait=0.3)
    with group.arrival():
        started = time.monotonic()
        group.submit(rows(1))
        assert 0.25 <= time.monotonic() - started < 10
    assert stored_count() == 2


def test_a_failed_insert_fails_every_batch_in_it_and_stores_nothing(ch):
    group = BatchGroupCommit()
    first, good = rows(2), rows(3)
    broken = rows(1, position_seconds=2**40)  # does not fit UInt32: the whole insert fails
    with services.writes_paused():
        threads, outcomes = submit_in_threads(group, [first, good, broken])
    for t in threads:
        t.join(timeout=30)
    assert outcomes[0] is None
    # The good batch shared the broken one's insert: neither is acknowledged, neither stored.
    assert all(isinstance(o, DatabaseError) and "position_seconds" in str(o) for o in outcomes[1:])
    assert stored_count() == 2
    # Not stuck: the good batch sent again goes in.
    group.submit(good)
    assert stored_count() == 5


def test_repeated_ids_across_batches_of_one_insert_are_stored_once(ch):
    group = BatchGroupCommit()
    shared = rows(3)
    with services.writes_paused():
        threads, outcomes = submit_in_threads(group, [rows(1), shared + rows(2), [dict(e) for e in shared]])
    for t in threads:
        t.join(timeout=30)
    assert outcomes == [None] * 3
    assert group.inserts == 2
    assert stored_count() == 6


@pytest.mark.slow
@pytest.mark.embedded
def test_concurrent_batches_over_real_http_every_201_is_stored(server):  # noqa: F811
    base, process, count_stored = server
    acknowledged, lock = [], threading.Lock()

    def producer():
        for _ in range(6):
            items = [{"id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "movie_id": str(uuid.uuid4()),
                      "event_type": "start", "event_time": "2026-11-27T12:00:00Z"} for _ in range(500)]
            try:
                status, body = post(base, "/api/v1/analytics/events/batch", items)
            except OSError:  # the server went away before answering: not acknowledged
                return
            if status == 201:
                assert body == {"accepted": 500}
                with lock:
                    acknowledged.extend(item["id"] for item in items)

    producers = [threading.Thread(target=producer) for _ in range(4)]
    for p in producers:
        p.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 4000 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # batches still in flight: what was answered 201 is stored
    assert process.wait(timeout=60) == 0
    for p in producers:
        p.join(timeout=60)
    assert len(acknowledged) >= 4000
    assert count_stored(acknowledged) == len(acknowledged)
