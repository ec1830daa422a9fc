"""Rebalances against a real broker: the listener stores and commits the buffered batch
before partitions move, through the loop's public hooks, and closes the database connection
its store opened on kafka-python's IO thread."""

import random
import threading

import pytest
from django.db import connections

from tests.conftest import query
from tests.kafka_broker import (
    expected_analytics,
    make_loop,
    produce_stream,
    run_in_thread,
    stored_analytics,
    wait_until,
)

pytestmark = [pytest.mark.kafka]


def analytics():
    return stored_analytics(query)


@pytest.mark.slow
def test_a_rebalance_stores_and_commits_the_buffered_batch_before_partitions_move(ch, kafka):
    # The first consumer would hold its batch for a minute; only the rebalance listener can
    # store and commit it when a second member joins.
    stores = []  # (thread, its ClickHouse connection wrapper) of each store of the first loop

    def note_store(batch):
        stores.append((threading.current_thread(), connections["clickhouse"]))

    first = make_loop(kafka, batch_size=10000, flush_interval=60, on_stored=note_store)
    first_run = run_in_thread(first, exit_on_idle=2)
    wait_until(lambda: len(first.stats.assignment) == 9, 30, "the first consumer to own every partition")
    facts, sent = produce_stream(kafka, random.Random(17), 200)
    wait_until(lambda: first.stats.consumed == len(sent), 30, "the first consumer to read everything")
    assert first.stats.stored == 0 and kafka.committed(kafka.group()) == {}

    second = make_loop(kafka)
    # Patient enough to stay until it is assigned: once the first member's listener has
    # committed everything, the group has read every partition to its end, so a member still
    # waiting for its assignment (a join took over 5 s on a loaded machine) would rightly stop
    # after 2 s of idle, never assigned.
    second_run = run_in_thread(second, exit_on_idle=20)
    wait_until(lambda: second.stats.assignment, 90, "the second consumer to get partitions")
    assert first.stats.stored == len(facts)  # stored by the listener, not by a flush trigger
    assert kafka.committed(kafka.group()) == kafka.produced_offsets()
    # That store ran on kafka-python's IO thread, not the loop's, and the connection it
    # opened there is closed again.
    (store_thread, store_connection), = stores
    assert store_thread is not first_run[0]
    assert store_connection.connection is None

    for thread, result in (first_run, second_run):
        thread.join(60)
        assert not thread.is_alive() and "error" not in result
    # Nothing the first consumer had buffered was read again by the second.
    assert first.stats.consumed + second.stats.consumed == len(sent)
    assert analytics() == expected_analytics(facts)


def test_the_hooks_without_a_broker_assignment_names_partitions_and_lost_drops_the_buffer():
    from kafka import TopicPartition

    from viewing.kafka.config import ConsumerConfig
    from viewing.kafka.loop import StreamConsumer

    # Never started: the hooks are plain methods, called here as the listener calls them.
    loop = StreamConsumer(ConsumerConfig(bootstrap_servers="127.0.0.1:9", topics=["t"], group_id="g", dlq_topic="d"))
    topic = "t"
    loop.offsets.seen(topic, 0, 5)
    loop.offsets.seen(topic, 1, 7)
    loop.on_assigned({TopicPartition(topic, 1), TopicPartition(topic, 2)})
    assert loop.stats.assignment == [f"{topic}[1]", f"{topic}[2]"]
    assert loop.offsets.stored_next == {(topic, 1): 7}  # partition 0 went to another member
    assert loop.idle.joined

    loop.batcher.add({"id": 1}, topic=topic, partition=1, offset=7)
    loop.on_lost({TopicPartition(topic, 1)})
    assert len(loop.batcher) == 0  # evicted: the new owner reads it again from the committed offset
    assert loop.on_revoked(set()) is None and not loop.idle.joined
