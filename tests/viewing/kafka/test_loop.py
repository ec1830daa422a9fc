"""The consumer loop against a real broker (Tansu, or KAFKA_BOOTSTRAP_SERVERS) and the test
ClickHouse: types, every aggregate exactly once, ClickHouse outages, two members, replays,
--max-messages. Dead letters: test_dlq.py; rebalances: test_rebalance.py."""

import random
import threading
import uuid

import pytest
from prometheus_client import REGISTRY

from tests.conftest import query
from tests.kafka_broker import (
    event,
    expected_analytics,
    make_loop,
    produce_stream,
    run_in_thread,
    stored_analytics,
    wait_until,
)
from viewing.events import EVENT_TYPES
from viewing.kafka.processor import derived_event_id

pytestmark = [pytest.mark.kafka]


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


def test_the_next_batch_is_read_while_one_is_stored_and_offsets_follow_the_store(ch, kafka):
    """A full batch goes to the store thread and the loop reads on; its offsets are committed
    only once it is stored, batches in order. The store of the first batch is held here (the
    on_stored hook runs after the insert, before the commit) until the loop has read more."""
    facts, sent = produce_stream(kafka, random.Random(21), 150)
    release, holding = threading.Event(), threading.Event()
    stored_batches = []

    def hold_first(batch):
        stored_batches.append(len(batch))
        if len(stored_batches) == 1:
            holding.set()
            assert release.wait(60)

    loop = make_loop(kafka, batch_size=50, flush_interval=2, on_stored=hold_first)
    thread, result = run_in_thread(loop, exit_on_idle=1)
    try:
        wait_until(holding.is_set, 60, "the first batch to be stored")
        # While the first batch is held, the loop reads the next one ...
        wait_until(lambda: loop.stats.consumed >= 100, 30, lambda: loop.stats.snapshot())
        # ... and nothing is committed: the first batch's commit waits for its store.
        assert kafka.committed(kafka.group()) == {}
        assert loop.stats.stored == 0
    finally:
        release.set()
    thread.join(60)
    assert not thread.is_alive() and "error" not in result
    assert sum(stored_batches) == len(sent)
    assert analytics() == expected_analytics(facts)
    assert kafka.committed(kafka.group()) == kafka.produced_offsets()
