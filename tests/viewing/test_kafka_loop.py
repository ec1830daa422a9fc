"""The consumer loop against a real broker (Tansu, or KAFKA_BOOTSTRAP_SERVERS) and the test
ClickHouse: types, dead letters, ClickHouse outages, rebalances and replays."""

import random
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import query
from tests.kafka_broker import TEST_HEARTBEAT_INTERVAL_MS, TEST_SESSION_TIMEOUT_MS
from viewing.events import EVENT_TYPES
from viewing.kafka.loop import StreamConsumer
from viewing.kafka.processor import derived_event_id

pytestmark = [pytest.mark.kafka]


def make_loop(kafka, group="g", **options):
    options.setdefault("batch_size", 500)
    options.setdefault("flush_interval", 0.2)
    return StreamConsumer(
        bootstrap_servers=kafka.bootstrap,
        topics=kafka.topics,
        group_id=kafka.group(group),
        dlq_topic=kafka.dlq,
        session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=TEST_HEARTBEAT_INTERVAL_MS,
        backoff_initial=0.1,
        backoff_max=0.5,
        **options,
    )


def event(rng, *, action=None, with_id=True, users=None, movies=None):
    """A valid message value (dict) with a time in the last few days."""
    now = datetime.now(timezone.utc)
    value = {
        "user_id": str(rng.choice(users) if users else uuid.UUID(int=rng.getrandbits(128), version=4)),
        "movie_id": str(rng.choice(movies) if movies else uuid.UUID(int=rng.getrandbits(128), version=4)),
        "timestamp": (now - timedelta(seconds=rng.randrange(60, 5 * 86400))).isoformat(),
        "position_seconds": rng.randrange(0, 7200),
        "session_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    }
    if action is not None:
        value["action"] = action
    if with_id:
        value["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return value


def stored_types():
    return {row[0]: row[1] for row in query("SELECT id, event_type FROM viewing_events")}


def test_each_action_spelling_and_the_topic_fallback(ch, kafka):
    rng = random.Random(4)
    expected = {}
    for spelling, stored_as in EVENT_TYPES.items():
        # `action` decides whatever the topic: send each spelling to a topic of another type.
        value = event(rng, action=spelling)
        kafka.produce(kafka.topic("progress" if stored_as != "progress" else "start"), value)
        expected[uuid.UUID(value["event_id"])] = stored_as
    fallbacks = []
    for kind, stored_as in (("start", "start"), ("progress", "progress"), ("stop", "finish")):
        for _ in range(3):
            fallbacks.append((kafka.produce(kafka.topic(kind), event(rng, with_id=False)), stored_as))
    kafka.flush()
    for future, stored_as in fallbacks:
        meta = future.get(timeout=10)
        # No event_id: the id is derived from the coordinates, so it can be predicted here.
        expected[derived_event_id(meta.topic, meta.partition, meta.offset)] = stored_as

    stats = make_loop(kafka).run(exit_on_idle=1)

    assert stored_types() == expected
    assert stats["consumed"] == stats["stored"] == len(expected)
    assert stats["dead_lettered"] == 0
    assert kafka.committed(kafka.group()) == kafka.produced_offsets()
