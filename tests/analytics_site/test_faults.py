"""ClickHouse faults, for real: the API answers 503 JSON (no traceback), /ready goes 503, both
recover by themselves, and no request waits longer than the configured timeouts.

- Embedded engine: every table of the service's database is detached (DETACH TABLE) and
  attached again; every query of the service then fails as it would against a lost server.
  (Not the database itself: the embedded transport creates a missing database on connect.)
- Server mode, in a subprocess: CLICKHOUSE_HOST pointing at a closed port (connection refused)
  and at a port that accepts connections but never answers (timeouts).
"""

import json
import os
import socket
import subprocess
import sys
import time
import uuid

import pytest
from django.conf import settings
from django.db import DatabaseError, connections

from analytics_site.exceptions import StorageUnavailable, StoreFailed
from tests.conftest import query

BASE = "/api/v1/analytics"
READS = [f"{BASE}/content/popular", f"{BASE}/user/{uuid.uuid4()}/stats", f"{BASE}/trends", f"{BASE}/peak-hours"]


def event():
    return {"user_id": str(uuid.uuid4()), "movie_id": str(uuid.uuid4()), "event_type": "start"}


def detach_tables():
    """Detaches every table of the database, materialized views first; returns them in order."""
    tables = query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "ORDER BY engine = 'MaterializedView' DESC, name"
    )
    with connections["clickhouse"].cursor() as cursor:
        for (name,) in tables:
            cursor.execute(f"DETACH TABLE `{name}`")
    return [name for (name,) in tables]


def attach_tables(names):
    with connections["clickhouse"].cursor() as cursor:
        for name in reversed(names):
            cursor.execute(f"ATTACH TABLE `{name}`")


@pytest.mark.embedded
def test_clickhouse_lost_is_a_json_503_and_everything_recovers_by_itself(ch, client, caplog):
    assert client.post(f"{BASE}/events", event(), content_type="application/json").status_code == 201
    detached = detach_tables()
    try:
        writes = [client.post(f"{BASE}/events", event(), content_type="application/json"),
                  client.post(f"{BASE}/events/batch", [event()], content_type="application/json")]
        reads = [client.get(path) for path in READS]
        for response in writes + reads:
            assert response.status_code == 503, response.content
            assert "Traceback" not in response.content.decode()
        for response in writes:
            assert response.json() == {"detail": StoreFailed.default_detail, "cause": "UNKNOWN_TABLE"}
        for response in reads:
            assert response.json() == {"detail": StorageUnavailable.default_detail, "cause": "UNKNOWN_TABLE"}
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["status"] == "not ready"
        assert ready.json()["migrations"] != "ok"  # its tables are gone: "25 pending"
    finally:
        attach_tables(detached)
    # Back by itself: no restart, same process, same connections.
    assert client.get("/ready").status_code == 200
    assert client.post(f"{BASE}/events", event(), content_type="application/json").status_code == 201
    assert client.post(f"{BASE}/events/batch", [event()], content_type="application/json").status_code == 201
    assert all(client.get(path).status_code == 200 for path in READS)
    assert query("SELECT count() FROM viewing_events") == [(3,)]
    # The message is logged, not sent (it may quote data); the error's name is sent.
    assert "ClickHouse write failed (UNKNOWN_TABLE)" in caplog.text
    assert "ClickHouse query failed (UNKNOWN_TABLE)" in caplog.text


@pytest.mark.embedded
def test_every_query_carries_the_timeout_and_the_engine_enforces_it(ch):
    with connections["clickhouse"].cursor() as cursor:
        cursor.execute("SELECT getSetting('max_execution_time')")
        assert cursor.fetchall() == [(settings.CLICKHOUSE_QUERY_SETTINGS["max_execution_time"],)]
        started = time.monotonic()
        with pytest.raises(DatabaseError, match="TIMEOUT_EXCEEDED"):
            cursor.execute(
                "SELECT sleepEachRow(0.1) FROM numbers(100) SETTINGS max_execution_time = 1, max_block_size = 1"
            )
            cursor.fetchall()
        assert time.monotonic() - started < 3


SERVER_MODE = """
import json, sys, time, django
django.setup()
from django.core.management import call_command
call_command("migrate", database="default", verbosity=0)  # Django's own tables (API keys): SQLite
from django.test import Client
client, out = Client(), []
for method, path in [("get", "/api/v1/analytics/trends"), ("post", "/api/v1/analytics/events"),
                     ("get", "/health"), ("get", "/ready")]:
    started = time.monotonic()
    kwargs = {"data": {"user_id": sys.argv[1], "movie_id": sys.argv[1], "event_type": "start"},
              "content_type": "application/json"} if method == "post" else {}
    response = getattr(client, method)(path, **kwargs)
    out.append([path, response.status_code, response.json(), time.monotonic() - started])
print(json.dumps(out))
"""


def run_against(port, tmp_path):
    env = {
        **os.environ,
        "CLICKHOUSE_HOST": "127.0.0.1",
        "CLICKHOUSE_PORT": str(port),
        "CLICKHOUSE_CONNECT_TIMEOUT": "1",
        "CLICKHOUSE_QUERY_TIMEOUT": "2",
        "ANALYTICS_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_SETTINGS_MODULE": "analytics_site.settings",
        "DJANGO_DEBUG": "true",  # no key exists in this fresh process: the open mode
        "ALLOWED_HOSTS": "testserver",
    }
    env.pop("CLICKHOUSE_DATA_DIR", None)
    done = subprocess.run([sys.executable, "-c", SERVER_MODE, str(uuid.uuid4())], env=env, cwd=settings.BASE_DIR,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_server_refusing_connections_is_503_at_once(tmp_path):
    for path, status, body, seconds in run_against(free_port(), tmp_path):
        assert status == 503, (path, body)
        assert seconds < 3, (path, seconds)
        if path.startswith("/api/"):
            assert body in ({"detail": StorageUnavailable.default_detail, "cause": "NETWORK_ERROR"},
                            {"detail": StoreFailed.default_detail, "cause": "NETWORK_ERROR"}), (path, body)
        else:
            assert body["clickhouse"] != "ok"


@pytest.mark.slow
def test_server_that_never_answers_is_503_within_the_timeouts(tmp_path):
    with socket.socket() as black_hole:  # accepts connections (backlog), never says a word
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(16)
        results = run_against(black_hole.getsockname()[1], tmp_path)
    for path, status, body, seconds in results:
        assert status == 503, (path, body)
        # connect (1 s) + one read (CLICKHOUSE_QUERY_TIMEOUT 2 s), with room for a slow machine
        assert seconds < 6, (path, seconds)

