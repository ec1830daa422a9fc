"""Bodies staged together (viewing/stage_group.py, engine_stage.stage_bodies): one engine query
for the bodies of concurrent requests, each request its own rows and its own answer, a body
the engine declines or cannot read left to the rules alone."""

import json
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connections

from tests.conftest import query
from viewing import batch_engine, clock
from viewing.engine_stage import bounds_params, stage_bodies
from viewing.engine_store import staged_store
from viewing.stage_group import StagingGroup

MOVIE = "5f0c1a5e-8f43-4c54-9a1e-6a4f1b2c3d4e"


def items(count, **changes):
    now = clock.now()
    return [{"id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "movie_id": MOVIE, "event_type": "start",
             "position_seconds": n, "event_time": (now - timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "metadata": {"n": n}, **changes} for n in range(count)]


def entry(body_items):
    return json.dumps(body_items).encode(), bounds_params(clock.now(), 365)


def stored_ids():
    return {str(row[0]) for row in query("SELECT id FROM viewing_events")}


def queued_together(group, threads):
    """Start `threads` (each staging one body) while an arrival holds the leader back, until
    all of them are queued; then let them be staged, and wait for them."""
    with group.arrival():
        for t in threads:
            t.start()
        while len(group._queued) < len(threads):
            time.sleep(0.01)
    for t in threads:
        t.join(timeout=30)


def test_bodies_staged_in_one_query_each_give_their_own_rows(ch):
    good, declined, other = items(3), items(2, position_seconds=-1), items(4)
    staged = stage_bodies([entry(good), entry(declined), entry(other)], sql_for=batch_engine.STAGE)
    assert [None if s is None else len(s) for s in staged] == [3, None, 4]
    assert staged_store([staged[0]]) == 3
    assert stored_ids() == {i["id"] for i in good}
    assert staged_store([staged[2]]) == 4
    assert stored_ids() == {i["id"] for i in good + other}
    rows = query("SELECT toString(id), position_seconds, metadata FROM viewing_events")
    assert sorted(rows) == sorted((i["id"], i["position_seconds"], json.dumps(i["metadata"], separators=(",", ":")))
                                  for i in good + other)
    for s in staged:
        if s is not None:
            s.close()


def test_a_body_the_engine_cannot_read_fails_alone(ch):
    """A repeated key fails the engine's read of every body of the query: each is then staged
    alone, and only that one is left to the rules."""
    repeated = b'[{"user_id": "' + str(uuid.uuid4()).encode() + b'", "user_id": "x", "movie_id": "' + MOVIE.encode() + b'"}]'
    good, other = items(2), items(1)
    bounds = bounds_params(clock.now(), 365)
    staged = stage_bodies([entry(good), (repeated, bounds), entry(other), (b"[]", bounds)], sql_for=batch_engine.STAGE)
    assert [None if s is None else len(s) for s in staged] == [2, None, 1, None]
    assert staged_store([s for s in staged if s is not None]) == 3
    assert stored_ids() == {i["id"] for i in good + other}


def test_requests_arriving_together_are_staged_by_one_query(ch):
    group = StagingGroup(batch_engine._stage_together, arrival_wait=30.0)
    bodies = [items(n + 1) for n in range(4)]
    results = {}

    def request(k):
        with group.arrival():
            results[k] = group.stage(entry(bodies[k]))
        connections.close_all()

    with group.arrival():  # a request whose body is still being read: the others wait for it
        threads = [threading.Thread(target=request, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        assert group.stagings == 0
        results[3] = group.stage(entry(bodies[3]))
    for t in threads:
        t.join(timeout=30)
    assert group.stagings == 1
    assert {k: len(r) for k, r in results.items()} == {0: 1, 1: 2, 2: 3, 3: 4}
    assert staged_store([results[k] for k in range(4)]) == 10
    assert stored_ids() == {i["id"] for body in bodies for i in body}


def test_a_lone_request_is_staged_at_once_and_a_pool_waits_for_its_size(ch):
    group = StagingGroup(batch_engine._stage_together, arrival_wait=30.0, expect_wait=30.0)
    started = time.monotonic()
    assert len(group.stage(entry(items(2)))) == 2  # nothing arriving, none expected: no wait
    assert time.monotonic() - started < 20 and group.stagings == 1

    def stage_three(results):
        threads = [threading.Thread(target=lambda: (results.append(group.stage(entry(items(1)))),
                                                    connections.close_all())) for _ in range(3)]
        queued_together(group, threads)  # one staging of three

    first = []
    stage_three(first)
    assert group.stagings == 2 and len(first) == 3
    # After a staging of three, three requests are waited for even before they count as
    # arriving (a pool's bodies reach the server a few milliseconds apart).
    later = []
    threads = [threading.Thread(target=lambda: (later.append(group.stage(entry(items(1)))),
                                                connections.close_all())) for _ in range(3)]
    for t in threads:
        t.start()
        time.sleep(0.2)
        assert group.stagings == 2 or len(later) == 3
    for t in threads:
        t.join(timeout=60)
    assert group.stagings == 3 and len(later) == 3


def test_an_error_of_the_staging_reaches_every_request_of_it():
    def fail(entries):
        raise RuntimeError(f"the engine went away ({len(entries)} bodies)")

    group = StagingGroup(fail, arrival_wait=30.0)
    errors = []

    def request():
        try:
            group.stage(b"[]")
        except RuntimeError as e:
            errors.append(str(e))

    queued_together(group, [threading.Thread(target=request) for _ in range(2)])
    assert errors == ["the engine went away (2 bodies)"] * 2
    with pytest.raises(RuntimeError):
        group.stage(b"[]")
