"""The consumer as a background thread of the API process (ENABLE_KAFKA=true): it never
blocks or breaks the API while the broker is unreachable, consumes once it is there, and its
health shows in /ready and /metrics — a poison flood stops it and /ready says why."""

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
from viewing.kafka import thread as thread_module
from viewing.kafka.config import ConsumerConfig
from viewing.kafka.loop import StreamConsumer
from viewing.kafka.thread import ConsumerThread, restart_consumer_thread

pytestmark = [pytest.mark.kafka]


def loop_factory(bootstrap, kafka=None, **options):
    def factory():
        return StreamConsumer(ConsumerConfig(
            bootstrap_servers=bootstrap,
            topics=kafka.topics if kafka else ["stream.start"],
            group_id=kafka.group("thread") if kafka else "nobody",
            dlq_topic=kafka.dlq if kafka else "stream.dlq",
            batch_size=200,
            flush_interval=0.2,
            session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=TEST_HEARTBEAT_INTERVAL_MS,
            **options,
        ))

    return factory


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.fixture
def server_thread(settings, monkeypatch):
    """Installs a ConsumerThread as this process's own (as analytics_site/wsgi.py starts it),
    with ENABLE_KAFKA on; stops whichever one is installed at the end."""
    settings.ENABLE_KAFKA = True
    monkeypatch.setattr(thread_module, "_started", None)

    def install(thread):
        thread_module._started = thread
        return thread

    yield install
    if thread_module._started is not None:
        assert thread_module._started.stop(timeout=30)


def test_an_unreachable_broker_never_blocks_or_breaks_the_api(ch, client, server_thread):
    thread = server_thread(ConsumerThread(factory=loop_factory(f"127.0.0.1:{closed_port()}",
                                                               bootstrap_timeout_ms=300),
                                          backoff_initial=0.2, backoff_max=0.4))
    started = time.monotonic()
    thread.start()
    assert time.monotonic() - started < 0.5  # start() returns at once
    try:
        wait_until(lambda: thread.state == "backing off", 15, lambda: thread.state)
        assert "Kafka is not reachable" in thread.last_error
        response = Client().get("/health")
        assert response.status_code == 200
        # Backing off is not "not ready": the API works, and the thread retries by itself.
        ready = client.get("/ready")
        assert ready.status_code == 200, ready.json()
        assert ready.json()["kafka"]["state"] == "backing off"
        assert "Kafka is not reachable" in ready.json()["kafka"]["reason"]
        assert 'analytics_consumer_state{state="backing_off"} 1.0' in client.get("/metrics").content.decode()
        # It keeps trying with a bounded back-off (0.2 s, then 0.4 s), still without a broker.
        wait_until(lambda: thread.failures >= 4, 15, lambda: thread.failures)
        assert thread.is_alive() and thread.state == "backing off"
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


def ready_kafka(client):
    response = client.get("/ready")
    return response.status_code, response.json().get("kafka")


def test_a_poison_flood_stops_the_thread_and_ready_says_why_until_a_restart(ch, client, kafka, server_thread):
    thread = server_thread(ConsumerThread(factory=loop_factory(kafka.bootstrap, kafka, poison_limit=20)).start())
    rng = random.Random(41)
    facts, _ = produce_stream(kafka, rng, 30)
    # Stored, then counted: the stats follow the insert.
    wait_until(lambda: query("SELECT count() FROM viewing_events")[0][0] == len(facts)
               and thread.loop is not None and thread.loop.stats.stored == len(facts), 30, "the first events")
    status, health = ready_kafka(client)
    assert status == 200 and health["state"] == "running" and health["reason"] is None
    assert health["last_flush"]["stored"] > 0 and health["messages_per_second"] > 0
    assert set(health["lag"]) <= {f"{t}[{p}]" for t in kafka.topics for p in range(3)}

    # A producer gone wrong: 20 invalid messages in a row, the limit.
    for i in range(20):
        kafka.produce(kafka.topic("start"), b"garbage %d" % i, partition=0)
    kafka.flush()
    wait_until(lambda: ready_kafka(client)[0] == 503, 30, lambda: ready_kafka(client))
    status, health = ready_kafka(client)
    assert health["state"] == "stopped"
    assert "The last 20 messages were all invalid (limit KAFKA_POISON_LIMIT=20)" in health["reason"]
    assert health["last_flush"] is not None  # the last flush before the stop stays visible
    assert client.get("/health").status_code == 200  # the process and ClickHouse are fine
    metrics = client.get("/metrics").content.decode()
    assert 'analytics_consumer_state{state="stopped"} 1.0' in metrics
    assert 'analytics_consumer_state{state="running"} 0.0' in metrics
    assert not thread.is_alive()  # it waits for an operator: no restart by itself

    # The producer is fixed; the operator restarts the consumer.
    more, _ = produce_stream(kafka, rng, 30)
    restarted = restart_consumer_thread()
    assert restarted is not thread and thread_module.consumer_thread() is restarted
    wait_until(lambda: query("SELECT count() FROM viewing_events")[0][0] == len(facts) + len(more), 30,
               "the restarted thread to store the new events")
    status, health = ready_kafka(client)
    assert status == 200 and health["state"] == "running" and health["reason"] is None
    assert 'analytics_consumer_state{state="running"} 1.0' in client.get("/metrics").content.decode()
    assert restarted.stop(timeout=30)
    assert stored_analytics(query) == expected_analytics(facts + more)
    assert kafka.committed(kafka.group("thread")) == kafka.produced_offsets()


def test_settings_that_cannot_work_stop_the_thread_with_the_reason(ch, client, server_thread):
    def factory():  # 10,000 rows: three statements of 30 s each cannot fit in 60 s
        return StreamConsumer(ConsumerConfig(bootstrap_servers="127.0.0.1:9", topics=["t"], group_id="g",
                                             dlq_topic="d", batch_size=10000, insert_timeout=30,
                                             max_poll_interval_ms=60000))

    thread = server_thread(ConsumerThread(factory=factory, backoff_initial=0.1).start())
    wait_until(lambda: not thread.is_alive(), 15, lambda: thread.health())
    assert thread.failures == 0  # not retried: the same settings would fail the same way
    status, health = ready_kafka(client)
    assert status == 503 and health["state"] == "stopped"
    assert "KAFKA_MAX_POLL_INTERVAL_MS=60000" in health["reason"]
