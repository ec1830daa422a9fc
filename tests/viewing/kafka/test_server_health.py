"""The consumer thread's health in a real gunicorn server (ENABLE_KAFKA=true, started by
analytics_site/wsgi.py): a poison flood on the test broker turns /ready 503 with the reason
while /health stays 200; restarting the server makes it ready again and it consumes."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from django.conf import settings

from tests.kafka_broker import (
    TEST_HEARTBEAT_INTERVAL_MS,
    TEST_SESSION_TIMEOUT_MS,
    produce_stream,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.embedded]

MIGRATE = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    except OSError:
        return None, None


class Server:
    def __init__(self, env, log_path):
        self.env, self.log_path = env, log_path
        self.base = f"http://127.0.0.1:{env['PORT']}"
        self.process = None

    def start(self):
        gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
        self.log = open(self.log_path, "a")
        self.process = subprocess.Popen([gunicorn, "-c", "python:analytics_site.gunicorn_conf", "analytics_site.wsgi"],
                                        env=self.env, cwd=settings.BASE_DIR, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        wait_until(lambda: get(f"{self.base}/health")[0] == 200 or self.process.poll() is not None, 60,
                   "the server to answer /health")
        assert self.process.poll() is None, self.log_path.read_text()[-3000:]

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # the worker stops its consumer: flush, commit, leave
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()

    def ready(self):
        return get(f"{self.base}/ready")


def test_a_poison_flood_makes_the_server_not_ready_with_the_reason_until_it_is_restarted(kafka, tmp_path):
    env = {
        **os.environ,
        "ANALYTICS_VAR_DIR": str(tmp_path / "var"),
        "CLICKHOUSE_DATA_DIR": str(tmp_path / "clickhouse"),
        "DJANGO_SETTINGS_MODULE": "analytics_site.settings",
        "DJANGO_SECRET_KEY": "test-secret-key",
        "DJANGO_DEBUG": "false",
        "PORT": str(free_port()),
        "ENABLE_KAFKA": "true",
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "KAFKA_TOPICS": ",".join(kafka.topics),
        "KAFKA_CONSUMER_GROUP": kafka.group("server"),
        "KAFKA_DLQ_TOPIC": kafka.dlq,
        "KAFKA_SESSION_TIMEOUT_MS": str(TEST_SESSION_TIMEOUT_MS),
        "KAFKA_HEARTBEAT_INTERVAL_MS": str(TEST_HEARTBEAT_INTERVAL_MS),
        "KAFKA_POISON_LIMIT": "20",
        "KAFKA_FLUSH_INTERVAL": "0.2",
    }
    migrated = subprocess.run([sys.executable, "-c", MIGRATE], env=env, cwd=settings.BASE_DIR, capture_output=True,
                              text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    server = Server(env, tmp_path / "gunicorn.log")
    server.start()
    try:
        rng = random.Random(51)
        produce_stream(kafka, rng, 20)
        wait_until(lambda: (server.ready()[1] or {}).get("kafka", {}).get("last_flush") is not None, 60,
                   lambda: server.ready())
        status, body = server.ready()
        assert status == 200 and body["kafka"]["state"] == "running"

        for i in range(20):  # KAFKA_POISON_LIMIT invalid messages in a row
            kafka.produce(kafka.topic("start"), b"garbage %d" % i, partition=0)
        kafka.flush()
        wait_until(lambda: server.ready()[0] == 503, 60, lambda: server.ready())
        status, body = server.ready()
        assert body["status"] == "not ready" and body["kafka"]["state"] == "stopped"
        assert "The last 20 messages were all invalid (limit KAFKA_POISON_LIMIT=20)" in body["kafka"]["reason"]
        assert get(f"{server.base}/health")[0] == 200

        # The producer is fixed; the operator restarts the service.
        produce_stream(kafka, rng, 20)
        server.stop()
        server.start()
        wait_until(lambda: server.ready()[0] == 200, 60, lambda: server.ready())
        status, body = server.ready()
        assert body["kafka"]["state"] in ("starting", "running") and body["kafka"]["reason"] is None
        # It reads on from the committed offsets: the poison run is behind them.
        wait_until(lambda: kafka.committed(kafka.group("server")) == kafka.produced_offsets(), 60,
                   lambda: (kafka.committed(kafka.group("server")), kafka.produced_offsets()))
        assert server.ready()[0] == 200
    finally:
        server.stop()
