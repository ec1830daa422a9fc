"""The consumer loop against a real broker (Tansu, or KAFKA_BOOTSTRAP_SERVERS) and the test
ClickHouse: types, dead letters, ClickHouse outages, rebalances and replays."""

import json
import random
import threading
import uuid

import pytest
from prometheus_client import REGISTRY

from tests.conftest import query
from tests.kafka_broker import (
    TEST_HEARTBEAT_INTERVAL_MS,
    TEST_SESSION_TIMEOUT_MS,
    TYPES,
    event,
    expected_analytics,
    produce_stream,
    stored_analytics,
    wait_until,
)
from viewing.events import EVENT_TYPES
from viewing.kafka.loop import PoisonFlood, StreamConsumer
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


def run_in_thread(loop, **options):
    result = {}

    def target():
        try:
            result["stats"] = loop.run(**options)
        except BaseException as e:  # surfaced by the test through result["error"]
            result["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


def analytics():
    return stored_analytics(query)


def kafka_metric(name, **labels):
    return REGISTRY.get_sample_value(name, {"path": "kafka", **labels}) or 0


def test_stored_events_feed_every_aggregate_exactly_once(ch, kafka):
    facts, _ = produce_stream(kafka, random.Random(7), 400)
    ingested = kafka_metric("analytics_events_ingested_total")
    stats = make_loop(kafka, batch_size=120).run(exit_on_idle=1)
    # The /metrics counters follow the loop's own.
    assert kafka_metric("analytics_events_ingested_total") - ingested == stats["stored"]
    assert analytics() == expected_analytics(facts)
    assert stats["stored"] == len(facts)
    assert stats["duplicates"] == stats["consumed"] - len(facts) > 0  # the re-sent ones
    assert kafka.committed(kafka.group()) == kafka.produced_offsets()


INVALID = [
    # (value, the field its error names)
    (None, "non_field_errors"),
    (b"\xff not utf-8", "non_field_errors"),
    (b"{not json", "non_field_errors"),
    (b'"a string"', "non_field_errors"),
    ({"user_id": "nope"}, "user_id"),
    ({"movie_id": "nope"}, "movie_id"),
    ({"action": "rewind"}, "action"),
    ({"position_seconds": -5}, "position_seconds"),
    ({"timestamp": "2020-01-01T00:00:00Z"}, "timestamp"),
    ({"timestamp": "2999-01-01T00:00:00Z"}, "timestamp"),
    ({"metadata": "text"}, "metadata"),
    ({"event_id": "123"}, "event_id"),
    ({"session_id": "nope"}, "session_id"),
]


def test_each_kind_of_invalid_message_goes_to_the_dead_letter_topic_with_its_error(ch, kafka):
    rng = random.Random(11)
    sent = []
    for i, (change, field) in enumerate(INVALID):
        if isinstance(change, dict):
            value = json.dumps({**event(rng, action="start"), **change}).encode()
        else:
            value = change
        topic = kafka.topic(TYPES[i % 3])
        sent.append((kafka.produce(topic, value, key=f"k{i}".encode()), value, field))
        kafka.produce(topic, event(rng))  # valid neighbours keep flowing
    kafka.flush()

    stats = make_loop(kafka).run(exit_on_idle=1)

    assert stats["dead_lettered"] == len(INVALID)
    assert stats["stored"] == len(INVALID)
    letters = kafka.read(kafka.dlq, len(INVALID))
    by_source = {}
    for letter in letters:
        headers = {k: v.decode() for k, v in letter.headers}
        by_source[(headers["dlq.topic"], int(headers["dlq.partition"]), int(headers["dlq.offset"]))] = (
            letter, json.loads(headers["dlq.error"]))
    for future, value, field in sent:
        meta = future.get(timeout=10)
        letter, error = by_source[(meta.topic, meta.partition, meta.offset)]
        assert letter.value == value  # the original bytes, untouched
        assert letter.key == f"k{sent.index((future, value, field))}".encode()
        assert field in error and error[field]
    # Dead-lettered messages count as handled: their offsets are committed too.
    assert kafka.committed(kafka.group()) == kafka.produced_offsets()


def test_a_flood_of_invalid_messages_stops_the_loop_instead_of_dead_lettering_the_topic(ch, kafka):
    topic = kafka.topic("start")
    for i in range(50):
        kafka.produce(topic, b"garbage %d" % i, partition=0)
    kafka.flush()

    with pytest.raises(PoisonFlood, match="last 20 messages were all invalid"):
        make_loop(kafka, poison_limit=20).run(exit_on_idle=1)

    assert len(kafka.read(kafka.dlq, 20)) == 20
    assert kafka.committed(kafka.group()) == {(topic, 0): 20}  # the other 30 stay unread


@pytest.mark.slow
def test_clickhouse_down_for_a_while_then_back_loses_nothing(ch, kafka):
    loop = make_loop(kafka, batch_size=50)
    thread, result = run_in_thread(loop, exit_on_idle=1)
    wait_until(lambda: loop.stats.assignment or "error" in result, 30, "the group to form")
    # A real outage of the table the loop needs: with event_ids renamed away, every id
    # look-up fails as it would with ClickHouse unreachable. Nothing is faked.
    query("RENAME TABLE event_ids TO event_ids_away")
    try:
        facts, _ = produce_stream(kafka, random.Random(3), 200)
        wait_until(lambda: loop.stats.failed_flushes >= 3 and loop.stats.paused, 30, lambda: loop.stats.snapshot())
        snapshot = loop.stats.snapshot()
        assert snapshot["buffered"] <= 50  # fetching paused: memory stays bounded
        assert snapshot["stored"] == 0 and snapshot["state"] == "retrying"
        assert snapshot["total_lag"] >= 50  # what waits is visible as lag
        assert kafka.committed(kafka.group()) == {}
    finally:
        query("RENAME TABLE event_ids_away TO event_ids")
    thread.join(60)
    assert not thread.is_alive() and "error" not in result
    assert analytics() == expected_analytics(facts)
    assert kafka.committed(kafka.group()) == kafka.produced_offsets()


@pytest.mark.slow
def test_two_consumers_in_one_group_split_the_partitions_without_duplicates(ch, kafka):
    first, second = make_loop(kafka, batch_size=60), make_loop(kafka, batch_size=60)
    runs = [run_in_thread(first, exit_on_idle=3), run_in_thread(second, exit_on_idle=3)]

    def split():
        a, b = set(first.stats.assignment), set(second.stats.assignment)
        return a and b and not a & b and len(a | b) == 9

    wait_until(split, 30, "both consumers to share the 9 partitions")
    facts, _ = produce_stream(kafka, random.Random(5), 600)
    for thread, result in runs:
        thread.join(60)
        assert not thread.is_alive() and "error" not in result
    stats = [result["stats"] for _, result in runs]
    assert all(s["consumed"] > 0 for s in stats)
    # Each message was read by exactly one of them: nothing consumed twice.
    assert sum(s["consumed"] for s in stats) == len(kafka._sent)
    assert analytics() == expected_analytics(facts)
    assert kafka.committed(kafka.group()) == kafka.produced_offsets()


@pytest.mark.slow
def test_a_new_group_replaying_the_whole_topic_changes_no_result(ch, kafka):
    facts, _ = produce_stream(kafka, random.Random(9), 300)
    make_loop(kafka, group="first").run(exit_on_idle=1)
    before = analytics()
    assert before == expected_analytics(facts)

    # Different batch boundaries on purpose: de-duplication is by id, not by batch.
    stats = make_loop(kafka, group="second", batch_size=77).run(exit_on_idle=1)

    assert stats["consumed"] == len(kafka._sent) and stats["stored"] == 0
    assert stats["duplicates"] == stats["consumed"]
    assert analytics() == before


def test_max_messages_stops_after_exactly_that_many_with_them_committed(ch, kafka):
    facts, sent = produce_stream(kafka, random.Random(13), 40)

    first = make_loop(kafka).run(max_messages=15)
    assert first["consumed"] == 15
    assert sum(kafka.committed(kafka.group()).values()) == 15
    rest = make_loop(kafka).run(exit_on_idle=1)  # the same group goes on from there

    assert rest["consumed"] == len(sent) - 15
    assert analytics() == expected_analytics(facts)


@pytest.mark.slow
def test_a_rebalance_stores_and_commits_the_buffered_batch_before_partitions_move(ch, kafka):
    # The first consumer would hold its batch for a minute; only the rebalance listener can
    # store and commit it when a second member joins.
    first = make_loop(kafka, batch_size=10000, flush_interval=60)
    first_run = run_in_thread(first, exit_on_idle=2)
    wait_until(lambda: len(first.stats.assignment) == 9, 30, "the first consumer to own every partition")
    facts, sent = produce_stream(kafka, random.Random(17), 200)
    wait_until(lambda: first.stats.consumed == len(sent), 30, "the first consumer to read everything")
    assert first.stats.stored == 0 and kafka.committed(kafka.group()) == {}

    second = make_loop(kafka)
    second_run = run_in_thread(second, exit_on_idle=2)
    wait_until(lambda: second.stats.assignment, 30, "the second consumer to get partitions")
    assert first.stats.stored == len(facts)  # stored by the listener, not by a flush trigger
    assert kafka.committed(kafka.group()) == kafka.produced_offsets()

    for thread, result in (first_run, second_run):
        thread.join(60)
        assert not thread.is_alive() and "error" not in result
    # Nothing the first consumer had buffered was read again by the second.
    assert first.stats.consumed + second.stats.consumed == len(sent)
    assert analytics() == expected_analytics(facts)
