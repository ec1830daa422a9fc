"""Storing events: idempotent by id across re-sent, overlapping and repeated batches, in the
raw table and in every aggregate the views feed."""

import random
import uuid
from datetime import UTC, datetime, timedelta

from tests.conftest import query
from viewing.services import events_store

TYPES = ["start", "progress", "finish"]


def make_events(n, seed=1):
    rng = random.Random(seed)
    users = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(20)]
    movies = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(5)]
    base = datetime(2026, 11, 20)
    return [
        {
            "id": uuid.UUID(int=rng.getrandbits(128), version=4),
            "user_id": rng.choice(users),
            "movie_id": rng.choice(movies),
            "event_type": rng.choice(TYPES),
            "position_seconds": rng.randrange(0, 7200),
            "event_time": base + timedelta(seconds=rng.randrange(0, 7 * 86400)),
            "session_id": rng.choice([None, uuid.uuid4()]),
            "metadata": "{}",
        }
        for _ in range(n)
    ]


def everything():
    """Every stored row and every aggregate, in comparable form."""
    return {
        "raw": query("SELECT count(), uniqExact(id) FROM viewing_events"),
        "ids": query("SELECT count(), uniqExact(id) FROM event_ids"),
        "popular": query(
            "SELECT day, movie_id, sum(starts), sum(finishes), uniqMerge(viewers) "
            "FROM popular_content_daily GROUP BY day, movie_id ORDER BY day, movie_id"
        ),
        "users": query(
            "SELECT user_id, day, movie_id, sum(events), sum(starts), sum(finishes), sum(watch_seconds) "
            "FROM user_stats_daily GROUP BY user_id, day, movie_id ORDER BY user_id, day, movie_id"
        ),
        "daily": query(
            "SELECT day, sum(events), sum(starts), sum(finishes), uniqMerge(users), uniqMerge(movies) "
            "FROM events_daily GROUP BY day ORDER BY day"
        ),
        "hourly": query(
            "SELECT hour, sum(events), uniqMerge(users) FROM trends_hourly GROUP BY hour ORDER BY hour"
        ),
    }


def test_a_batch_is_stored_with_every_aggregate(ch):
    events = make_events(500)
    assert events_store(events=events) == 500
    state = everything()
    assert state["raw"] == [(500, 500)]
    assert state["ids"] == [(500, 500)]
    assert sum(row[1] for row in state["daily"]) == 500
    starts = sum(1 for e in events if e["event_type"] == "start")
    assert sum(row[2] for row in state["popular"]) == starts
    watch = sum(e["position_seconds"] for e in events if e["event_type"] == "finish")
    assert sum(row[6] for row in state["users"]) == watch


def test_resending_the_same_batch_changes_nothing(ch):
    events = make_events(300)
    events_store(events=events)
    before = everything()
    assert events_store(events=events) == 0
    assert everything() == before


def test_an_overlapping_batch_adds_only_the_new_events(ch):
    events = make_events(400)
    events_store(events=events[:250])
    assert events_store(events=events[150:]) == 150
    once = everything()
    # The same end state as storing the 400 once, in one batch.
    ch_reset()
    events_store(events=events)
    assert everything() == once


def test_repeats_inside_one_batch_count_once(ch):
    events = make_events(100)
    assert events_store(events=events + events[:40] + events[10:20]) == 100
    assert everything()["raw"] == [(100, 100)]


def test_a_stored_id_is_not_counted_again_even_with_other_content(ch):
    (event,) = make_events(1)
    events_store(events=[event])
    again = dict(event, event_type="finish", event_time=event["event_time"] + timedelta(days=3))
    assert events_store(events=[again]) == 0
    assert query("SELECT event_type FROM viewing_events") == [(event["event_type"],)]


def test_nothing_to_store(ch):
    assert events_store(events=[]) == 0
    assert everything()["raw"] == [(0, 0)]


def ch_reset():
    from viewing import ddl

    for table in ddl.DATA_TABLES:
        query(f"TRUNCATE TABLE {table}")


def test_every_column_is_stored_as_given(ch):
    """events_store hands DateTime columns to the driver as epoch seconds: naive times are UTC,
    aware ones are converted, a given created_at is kept; the tuple follows EVENT_COLUMNS."""
    from datetime import timezone

    from viewing import queries

    plus_two = timezone(timedelta(hours=2))
    events = [
        {"id": uuid.uuid4(), "user_id": uuid.uuid4(), "movie_id": uuid.uuid4(), "event_type": "start",
         "position_seconds": 4294967295, "event_time": datetime(2026, 11, 20, 10, 0, 5),
         "session_id": None, "metadata": '{"a":1}'},
        {"id": uuid.uuid4(), "user_id": uuid.uuid4(), "movie_id": uuid.uuid4(), "event_type": "finish",
         "position_seconds": 0, "event_time": datetime(2026, 11, 20, 12, 0, 5, 999999, tzinfo=plus_two),
         "session_id": uuid.uuid4(), "metadata": "{}", "created_at": datetime(2026, 11, 21, 1, 2, 3)},
    ]
    before = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    assert events_store(events=events) == 2
    after = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    stored = {row[0]: dict(zip(queries.EVENT_COLUMNS, row, strict=False))
              for row in query(f"SELECT {', '.join(queries.EVENT_COLUMNS)} FROM viewing_events")}
    first, second = stored[events[0]["id"]], stored[events[1]["id"]]
    assert {k: first[k] for k in events[0]} == events[0]
    assert before <= first["created_at"] <= after
    assert second["event_time"] == datetime(2026, 11, 20, 10, 0, 5)
    assert second["created_at"] == datetime(2026, 11, 21, 1, 2, 3)
    assert {k: second[k] for k in events[1] if k not in ("event_time", "created_at")} == {
        k: v for k, v in events[1].items() if k not in ("event_time", "created_at")}


def test_the_insert_token_is_the_digest_of_its_sorted_id_texts_and_does_not_change():
    """The de-duplication token must stay the same for the same ids across versions: a retry
    by another process (or after an upgrade) must skip the parts the first attempt wrote.
    Pinned to its value for fixed ids (UUIDs as 32 hex digits, strings as given), given the
    texts or not; the rows come back in that order."""
    from viewing.services import _batch_token, _id_text

    ids = [uuid.UUID("9b2f4a5e-0c1d-4e6f-8a7b-3c2d1e0f9a8b"), "0f0e0d0c-0b0a-4908-8706-050403020100",
           uuid.UUID("00000000-0000-4000-8000-000000000001")]
    for texts in (None, [_id_text(i) for i in ids]):
        rows = [(event_id, n) for n, event_id in enumerate(ids)]
        assert _batch_token(rows, texts) == "bded6fc198b9034b8410558bcce0cd54"
        assert [n for _, n in rows] == [2, 1, 0]
