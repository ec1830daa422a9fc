"""`manage.py consume_stream` as its own process: a SIGKILL between insert and commit, then a
restart; SIGTERM in the middle of a batch; the start-up checks. Each consumer process gets its
own data directory (the pytest process holds its own), and its results are read back by a
subprocess on that directory once the consumer has exited."""

import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from django.conf import settings

from tests.engine import EMBEDDED
from tests.kafka_broker import (
    TEST_HEARTBEAT_INTERVAL_MS,
    TEST_SESSION_TIMEOUT_MS,
    expected_analytics,
    produce_stream,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PYTHON = sys.executable

# Run with `python -c` in a consumer process: the loop of consume_stream, killed by SIGKILL
# right after the third batch is stored and before its offsets are committed. on_stored is
# the loop's instrumentation hook; nothing about Kafka or ClickHouse is faked.
CRASH_AFTER_THIRD_INSERT = """
import os, signal, django
django.setup()
from viewing.kafka.config import ConsumerConfig
from viewing.kafka.loop import StreamConsumer
stored = 0
def crash(batch):
    global stored
    stored += 1
    if stored == 3:
        os.kill(os.getpid(), signal.SIGKILL)
StreamConsumer(ConsumerConfig.from_settings(batch_size=100, flush_interval=60), on_stored=crash).run(exit_on_idle=20)
"""

READ_ANALYTICS = """
import json
from django.db import connections
from tests.kafka_broker import stored_analytics
def run(sql):
    with connections["clickhouse"].cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()
print("ANALYTICS=" + json.dumps(stored_analytics(run)))
"""


@pytest.fixture
def consumer_env(kafka, tmp_path):
    """Environment of a consumer process with its own, migrated ClickHouse data."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "analytics_site.settings",
        "DJANGO_SECRET_KEY": "test-secret-key",
        "DJANGO_DEBUG": "false",
        "ENABLE_KAFKA": "false",
        "ANALYTICS_VAR_DIR": str(tmp_path / "var"),
        "CLICKHOUSE_DATA_DIR": str(tmp_path / "clickhouse"),
        # Its own database on a server, too (created by migrate on the embedded engine).
        "CLICKHOUSE_DATABASE": f"kafka_{kafka.prefix}",
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "KAFKA_TOPICS": ",".join(kafka.topics),
        "KAFKA_CONSUMER_GROUP": kafka.group("process"),
        "KAFKA_DLQ_TOPIC": kafka.dlq,
        "KAFKA_SESSION_TIMEOUT_MS": str(TEST_SESSION_TIMEOUT_MS),
        "KAFKA_HEARTBEAT_INTERVAL_MS": str(TEST_HEARTBEAT_INTERVAL_MS),
        "LOG_LEVEL": "INFO",
    }
    if not EMBEDDED:
        from clickhouse_driver import Client

        server = Client(host=env["CLICKHOUSE_HOST"], port=int(env.get("CLICKHOUSE_PORT", 9000)),
                        user=env.get("CLICKHOUSE_USER", "default"), password=env.get("CLICKHOUSE_PASSWORD", ""))
        server.execute(f"CREATE DATABASE IF NOT EXISTS {env['CLICKHOUSE_DATABASE']}")
    manage(env, "migrate", "-v0")
    yield env
    if not EMBEDDED:
        server.execute(f"DROP DATABASE IF EXISTS {env['CLICKHOUSE_DATABASE']}")


def manage(env, *args, timeout=120, check=True):
    if args[0] in ("migrate", "consume_stream"):
        # System checks validate the web app (admin, URLs), which these tests are not about;
        # skipping them keeps the consumer's tests independent of that configuration.
        args = (*args, "--skip-checks")
    out = subprocess.run([PYTHON, "manage.py", *args], env=env, cwd=settings.BASE_DIR,
                         capture_output=True, text=True, timeout=timeout)
    if check:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


def analytics_of(env):
    out = manage(env, "shell", "-v0", "-c", READ_ANALYTICS)
    line = next(line for line in out.stdout.splitlines() if line.startswith("ANALYTICS="))
    return json.loads(line.removeprefix("ANALYTICS="))


class Process:
    """A child process whose stderr lines can be awaited (bounded) while it runs."""

    def __init__(self, args, env):
        self.proc = subprocess.Popen(args, env=env, cwd=settings.BASE_DIR, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for_line(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "no such line within {} s; got:\n{}".format(timeout, "".join(self.seen[-30:]))
            try:
                line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                assert self.proc.poll() is None, "exited {}:\n{}".format(self.proc.returncode, "".join(self.seen[-30:]))
                continue
            self.seen.append(line)
            if predicate(line):
                return line

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise


def test_sigkill_between_insert_and_commit_then_restart_changes_no_result(kafka, consumer_env):
    facts, sent = produce_stream(kafka, random.Random(21), 500)

    crashed = subprocess.run([PYTHON, "-c", CRASH_AFTER_THIRD_INSERT], env=consumer_env,
                             cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=90)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]

    # Two batches of 100 were committed; the third was stored, then the process died.
    committed = kafka.committed(consumer_env["KAFKA_CONSUMER_GROUP"])
    assert sum(committed.values()) == 200
    covered = {event_id for topic, partition, offset, event_id in sent
               if offset < committed.get((topic, partition), 0)}
    after_crash = analytics_of(consumer_env)
    stored = after_crash["raw"][0][0]
    assert stored > len(covered)  # rows past the committed offsets are in ClickHouse

    # Idle longer than the session timeout: the killed member keeps its partitions until its
    # session expires, and only the rebalance after that hands them over.
    restarted = manage(consumer_env, "consume_stream", "--exit-on-idle", str(TEST_SESSION_TIMEOUT_MS / 1000 + 2),
                       "--batch-size", "100", timeout=90)
    # It reads from the committed offsets: the third batch again (skipped by id), then the rest.
    assert f"consumed {len(sent) - 200}, stored {len(facts) - stored}," in restarted.stdout

    assert analytics_of(consumer_env) == expected_analytics(facts)
    assert kafka.committed(consumer_env["KAFKA_CONSUMER_GROUP"]) == kafka.produced_offsets()


def test_sigterm_mid_batch_flushes_commits_and_exits_0(kafka, consumer_env):
    env = {**consumer_env, "LOG_LEVEL": "DEBUG"}  # the loop's "Read N messages" lines
    consumer = Process([PYTHON, "manage.py", "consume_stream", "--batch-size", "5000",
                        "--flush-interval", "600", "--skip-checks"], env)
    try:
        consumer.wait_for_line(lambda line: "Assigned partitions" in line, 60)
        facts, sent = produce_stream(kafka, random.Random(22), 300)
        consumer.wait_for_line(lambda line: f"{len(sent)} consumed in all" in line, 60)
        # Everything read sits in the batch: nothing is stored or committed yet.
        assert kafka.committed(consumer_env["KAFKA_CONSUMER_GROUP"]) == {}
        consumer.proc.send_signal(signal.SIGTERM)
        assert consumer.wait(60) == 0, "".join(consumer.seen[-30:])
    finally:
        if consumer.proc.poll() is None:
            consumer.proc.kill()
    out = consumer.proc.stdout.read()
    assert f"consumed {len(sent)}, stored {len(facts)}" in out

    assert kafka.committed(consumer_env["KAFKA_CONSUMER_GROUP"]) == kafka.produced_offsets()
    assert analytics_of(consumer_env) == expected_analytics(facts)


def test_without_the_schema_the_command_says_to_migrate(kafka, tmp_path):
    env = {**os.environ, "DJANGO_SECRET_KEY": "x", "ANALYTICS_VAR_DIR": str(tmp_path / "var"),
           "CLICKHOUSE_DATA_DIR": str(tmp_path / "empty"), "CLICKHOUSE_DATABASE": f"missing_{kafka.prefix}",
           "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap}
    out = manage(env, "consume_stream", "--exit-on-idle", "1", check=False)
    assert out.returncode == 1
    assert "CommandError: The ClickHouse schema is missing: run `python manage.py migrate` first." in out.stderr
    assert "Traceback" not in out.stderr


def test_without_a_broker_the_command_says_kafka_is_not_reachable(consumer_env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nobody = f"127.0.0.1:{s.getsockname()[1]}"  # nothing listens once the socket is closed
    env = {**consumer_env, "KAFKA_BOOTSTRAP_SERVERS": nobody, "KAFKA_BOOTSTRAP_TIMEOUT_MS": "500"}
    out = manage(env, "consume_stream", check=False, timeout=60)
    assert out.returncode == 1
    assert f"CommandError: Kafka is not reachable at {nobody}" in out.stderr
    assert "Traceback" not in out.stderr


def test_exit_on_idle_after_a_member_was_killed_right_after_its_assignment_is_never_0_with_messages_unread(
        kafka, consumer_env):
    group = consumer_env["KAFKA_CONSUMER_GROUP"]
    facts, sent = produce_stream(kafka, random.Random(23), 300)
    first = Process([PYTHON, "manage.py", "consume_stream", "--batch-size", "100", "--skip-checks"], consumer_env)
    try:
        first.wait_for_line(lambda line: "Assigned partitions" in line, 60)
    finally:
        first.proc.kill()  # SIGKILL: no flush, no commit, no leaving the group
        first.proc.wait(10)

    # The dead member holds every partition until the broker evicts it (its session expires).
    out = manage(consumer_env, "consume_stream", "--exit-on-idle", "2", "--batch-size", "100", check=False,
                 timeout=120)

    committed, produced = kafka.committed(group), kafka.produced_offsets()
    if out.returncode == 0:  # it got the partitions and read everything
        assert committed == produced, out.stderr[-3000:]
        assert analytics_of(consumer_env) == expected_analytics(facts)
        assert "has read every partition to its end: stopping" in out.stderr
    else:  # or it says what it could not read
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-3000:]
        assert f"CommandError: Group {group} has not read every partition to its end" in out.stderr
        unread = [f"{t}[{p}]" for (t, p), end in produced.items() if committed.get((t, p), 0) < end]
        assert unread and all(name in out.stderr for name in unread)
