"""The consumer as a background thread of the API process (ENABLE_KAFKA=true): it never
blocks or breaks the API while the broker is unreachable, and consumes once it is there."""

import random
import socket
import time

import pytest
from django.test import Client

from tests.conftest import query
from tests.kafka_broker import (
    TEST_HEARTBEAT_INTERVAL_MS,
    TEST_SESSION_TIMEOUT_MS,
    expected_analytics,
    produce_stream,
    stored_analytics,
    wait_until,
)
from viewing.kafka.loop import StreamConsumer
from viewing.kafka.thread import ConsumerThread

pytestmark = [pytest.mark.kafka]


def loop_factory(bootstrap, kafka=None, **options):
    def factory():
        return StreamConsumer(
            bootstrap_servers=bootstrap,
            topics=kafka.topics if kafka else ["stream.start"],
            group_id=kafka.group("thread") if kafka else "nobody",
            dlq_topic=kafka.dlq if kafka else "stream.dlq",
            batch_size=200,
            flush_interval=0.2,
            session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=TEST_HEARTBEAT_INTERVAL_MS,
            **options,
        )

    return factory


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


def test_an_unreachable_broker_never_blocks_or_breaks_the_api(ch):
    thread = ConsumerThread(factory=loop_factory(f"127.0.0.1:{closed_port()}", bootstrap_timeout_ms=300),
                            backoff_initial=0.2, backoff_max=0.4)
    started = time.monotonic()
    thread.start()
    assert time.monotonic() - started < 0.5  # start() returns at once
    try:
        wait_until(lambda: thread.state == "waiting", 15, lambda: thread.state)
        assert "Kafka is not reachable" in thread.last_error
        response = Client().get("/health")
        assert response.status_code == 200
        # It keeps trying with a bounded back-off (0.2 s, then 0.4 s), still without a broker.
        wait_until(lambda: thread.failures >= 4, 15, lambda: thread.failures)
        assert thread.is_alive() and thread.state == "waiting"
    finally:
        assert thread.stop(timeout=15)
    assert thread.state == "stopped" and not thread.is_alive()


def test_the_thread_consumes_and_stops_cleanly(ch, kafka):
    thread = ConsumerThread(factory=loop_factory(kafka.bootstrap, kafka)).start()
    try:
        facts, sent = produce_stream(kafka, random.Random(31), 200)
        wait_until(lambda: query("SELECT count() FROM viewing_events")[0][0] == len(facts), 30,
                   "the thread to store every event")
    finally:
        assert thread.stop(timeout=30)
    assert stored_analytics(query) == expected_analytics(facts)
    assert kafka.committed(kafka.group("thread")) == kafka.produced_offsets()
