"""The laptop recipe of docs/kafka.md, command by command against a real broker: `kafka_broker`
(make broker) starts Tansu and creates the topics, `produce_sample` (make produce-sample)
sends valid and invalid messages, `consume_stream` stores the valid ones and dead-letters the
rest, `read_dlq` shows why, and a replay in a new group counts nothing twice."""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
from django.conf import settings
from kafka import KafkaAdminClient

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.embedded]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(tmp_path, bootstrap, **extra):
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "KAFKA_", "CLICKHOUSE_"))},
        "DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "dev-commands-test",
        "ANALYTICS_VAR_DIR": str(tmp_path / "var"), "CLICKHOUSE_DATA_DIR": str(tmp_path / "clickhouse"),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_SESSION_TIMEOUT_MS": "6000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "2000", **extra,
    }


def manage(env, *args):
    return subprocess.run([sys.executable, "manage.py", *args], env=env, cwd=settings.BASE_DIR,
                          capture_output=True, text=True, timeout=300)


def test_produce_consume_dead_letters_and_replay(tmp_path, kafka):
    env = environment(tmp_path, kafka.bootstrap, KAFKA_TOPICS=",".join(kafka.topics), KAFKA_DLQ_TOPIC=kafka.dlq)
    assert manage(env, "migrate").returncode == 0
    sent = manage(env, "produce_sample")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip().splitlines()[-1] == (
        f"Sent 5 valid and 4 invalid messages to {kafka.bootstrap}; the invalid ones go to {kafka.dlq}.")

    first = manage({**env, "KAFKA_CONSUMER_GROUP": kafka.group("first")}, "consume_stream", "--exit-on-idle", "3")
    assert first.returncode == 0, first.stderr
    assert "consumed 9, stored 5, duplicates 0, dead-lettered 4" in first.stdout

    letters = manage(env, "read_dlq")
    assert letters.returncode == 0, letters.stderr
    lines = letters.stdout.strip().splitlines()
    assert lines[-1] == f"4 dead letters in {kafka.dlq}."
    errors = "\n".join(lines[:-1])
    for expected in ('{"user_id": ["Must be a valid UUID."]}', '{"user_id": ["This field is required."]}',
                     '{"timestamp": ["Is more than 5 minutes in the future."]}', "Not valid JSON"):
        assert expected in errors, errors
    assert all(re.match(rf"{re.escape(kafka.topic('start'))}\[\d\]@\d+ ", line) for line in lines[:-1]), lines

    replay = manage({**env, "KAFKA_CONSUMER_GROUP": kafka.group("replay")}, "consume_stream", "--exit-on-idle", "3")
    assert replay.returncode == 0, replay.stderr
    assert "consumed 9, stored 0, duplicates 5, dead-lettered 4" in replay.stdout


def test_the_commands_without_a_broker_say_so_in_one_line(tmp_path):
    env = environment(tmp_path, f"localhost:{free_port()}")
    for command in ("produce_sample", "read_dlq"):
        done = manage(env, command)
        assert done.returncode == 1
        assert done.stderr.strip().splitlines() == [
            f"CommandError: No Kafka broker answers at {env['KAFKA_BOOTSTRAP_SERVERS']}: start one with "
            "`make broker`, or set KAFKA_BOOTSTRAP_SERVERS."]


def test_kafka_broker_serves_the_topics_until_stopped(tmp_path):
    port = free_port()
    bootstrap = f"localhost:{port}"
    env = environment(tmp_path, bootstrap)
    broker = subprocess.Popen([sys.executable, "manage.py", "kafka_broker"], env=env, cwd=settings.BASE_DIR,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = broker.stdout.readline()  # the command's first line comes once the topics exist
        while line and not line.startswith("Kafka-protocol broker"):
            line = broker.stdout.readline()
        assert line.startswith(f"Kafka-protocol broker (Tansu, in memory) on {bootstrap}. Topics: "), line
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
        try:
            assert {*settings.KAFKA_TOPICS, settings.KAFKA_DLQ_TOPIC} <= set(admin.list_topics())
        finally:
            admin.close()
        taken = manage(env, "kafka_broker")
        assert taken.returncode == 1 and f"Something already listens on localhost:{port}" in taken.stderr
    finally:
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=30)
    # The broker went with the command: nothing listens there any more.
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            break
        assert time.monotonic() < deadline, "Tansu outlived kafka_broker"
        time.sleep(0.1)  # the broker process exiting: nothing to poll on but its port
