"""Bodies of one group commit staged together by the engine (viewing/engine_stage.stage_bodies):
each body keeps its own answer, bounds and time of receipt, a body the engine declines goes
back to the rules while the others are stored, one the engine cannot read does not take the
others down with it, and an id in two bodies is stored once, the earlier body's."""

import json
import threading
import time
import uuid
from datetime import timedelta

from django.db import connections

from tests.conftest import query
from tests.viewing.test_batch_engine import DECLINED, MOVIE, NOW, engine_tried, item  # noqa: F401 (a fixture)
from viewing import services
from viewing.batch_commit import BatchGroupCommit
from viewing.batch_engine import RawBatch, stage_group
from viewing.engine_store import staged_store


def raw(items, now=NOW):
    return RawBatch(json.dumps(items).encode(), now=now, retention_days=365)


def events(count, user=None):
    user = user or str(uuid.uuid4())
    return [dict(item(), id=str(uuid.uuid4()), user_id=user, position_seconds=i) for i in range(count)]


def test_bodies_staged_together_are_answered_each_and_stored_in_one_insert(ch):
    bodies = [events(3), events(1), events(2)]
    staged, counts = stage_group([raw(b) for b in bodies])
    assert counts == [3, 1, 2] and len(staged) == 1 and len(staged[0]) == 6
    try:
        assert staged_store(staged) == 6
    finally:
        staged[0].close()
    assert query("SELECT count(), uniqExact(id) FROM viewing_events") == [(6, 6)]


def test_a_declined_body_leaves_the_staged_file_with_its_rows_unread(ch):
    """Declined among taken bodies: its rows are staged in the same file, and must not be stored."""
    bad = events(2)
    bad[1]["metadata"] = {"bitrate": 4.0}  # the rules decide (a float written as an integer)
    staged, counts = stage_group([raw(events(2)), raw(bad), raw(events(1))])
    assert counts == [2, None, 1] and len(staged) == 1 and len(staged[0]) == 3
    try:
        assert staged_store(staged) == 3
    finally:
        staged[0].close()
    assert query("SELECT count() FROM viewing_events WHERE user_id = toUUID(%(u)s)", {"u": bad[0]["user_id"]}) \
        == [(0,)]
    assert query("SELECT count() FROM viewing_events") == [(3,)]


def test_a_body_the_engine_cannot_read_is_staged_apart_from_the_others(ch):
    unreadable = "[" + json.dumps(events(1)[0]) + ", 5]"  # an item that is not an object
    bodies = [raw(events(2)), RawBatch(unreadable.encode(), now=NOW, retention_days=365), raw(events(3))]
    staged, counts = stage_group(bodies)
    assert counts == [2, None, 3] and [len(s) for s in staged] == [2, 3]
    try:
        assert staged_store(staged) == 5
    finally:
        for s in staged:
            s.close()
    assert query("SELECT count() FROM viewing_events") == [(5,)]


def test_each_body_has_its_own_time_of_receipt_and_bounds(ch):
    """A missing time is the body's receipt; the future bound is the body's receipt + 5 minutes."""
    earlier = NOW - timedelta(days=2)
    untimed = [dict(e, event_time=None) for e in events(1)]
    near_future = [dict(e, event_time=(NOW + timedelta(minutes=4)).isoformat()) for e in events(1)]
    bodies = [raw([{k: v for k, v in e.items() if v is not None} for e in untimed], now=earlier),
              raw(near_future, now=NOW), raw(near_future, now=earlier)]
    staged, counts = stage_group(bodies)
    assert counts == [1, 1, None]  # the last: 2 days ahead of its receipt, past the bound
    try:
        assert staged_store(staged) == 2
    finally:
        staged[0].close()
    assert query("SELECT toString(user_id), toUnixTimestamp(event_time) FROM viewing_events ORDER BY event_time") \
        == [(untimed[0]["user_id"], int(earlier.timestamp())),
            (near_future[0]["user_id"], int((NOW + timedelta(minutes=4)).timestamp()))]


def test_an_id_in_two_bodies_of_a_group_is_stored_once_the_earlier_bodys(ch):
    first, second = events(2), events(2)
    second[1]["id"] = first[0]["id"]
    staged, counts = stage_group([raw(first), raw(second)])
    assert counts == [2, 2] and len(staged) == 1
    try:
        assert staged_store(staged) == 3
    finally:
        staged[0].close()
    assert query("SELECT toString(user_id) FROM viewing_events WHERE id = toUUID(%(i)s)", {"i": first[0]["id"]}) \
        == [(first[0]["user_id"],)]


def test_a_group_commit_stages_its_bodies_together_and_hands_a_declined_one_back(ch):
    """Four bodies: the first alone (the store lock held, the others queue behind it), then the
    other three in one staging query: the declined one comes back (None, nothing stored, for
    the rules to check), the other two are stored in one insert, each answered with its count."""
    group = BatchGroupCommit()
    bad = events(1)
    bad[0]["metadata"] = {"bitrate": 4.0}
    bodies = [raw(events(1)), raw(events(2)), raw(bad), raw(events(4))]
    outcomes: list = [None] * len(bodies)

    def submit(i):
        try:
            outcomes[i] = group.submit(bodies[i])
        except Exception as e:  # pragma: no cover - reported below
            outcomes[i] = e
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(bodies))]
    with services.writes_paused():
        for t in threads:
            t.start()
            time.sleep(0.2)
    for t in threads:
        t.join(timeout=30)
    assert outcomes == [1, 2, None, 4]
    assert (group.inserts, group.requests) == (2, 3)
    assert query("SELECT count() FROM viewing_events") == [(7,)]
