"""The API in a real gunicorn server: every event answered 201 is stored, across SIGTERM too."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
from django.conf import settings

pytestmark = [pytest.mark.slow, pytest.mark.embedded]

COUNT_IDS = """
import json, sys, django
django.setup()
from django.db import connections
ids = json.load(open(sys.argv[1]))
with connections["clickhouse"].cursor() as cursor:
    cursor.execute("SELECT count() FROM viewing_events WHERE toString(id) IN %(ids)s", {"ids": tuple(ids) or ("",)})
    print(cursor.fetchall()[0][0])
"""
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


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "ANALYTICS_VAR_DIR": str(tmp_path / "var"),
        "CLICKHOUSE_DATA_DIR": str(tmp_path / "clickhouse"),
        "DJANGO_SETTINGS_MODULE": "analytics_site.settings",
        "DJANGO_DEBUG": "true",
        "ENABLE_KAFKA": "false",
        "PORT": str(port),
        "GUNICORN_ACCESS_LOG": str(tmp_path / "access.log"),
    }
    run = dict(env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120)
    migrated = subprocess.run([sys.executable, "-c", MIGRATE], **run)
    assert migrated.returncode == 0, migrated.stderr
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    log = open(tmp_path / "gunicorn.log", "w")
    process = subprocess.Popen(
        [gunicorn, "-c", "python:analytics_site.gunicorn_conf", "analytics_site.wsgi"],
        env=env, cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
        time.sleep(0.2)

    def count_stored(ids):
        (tmp_path / "ids.json").write_text(json.dumps(ids))
        out = subprocess.run([sys.executable, "-c", COUNT_IDS, str(tmp_path / "ids.json")], **run)
        assert out.returncode == 0, out.stderr
        return int(out.stdout.strip())

    yield base, process, count_stored
    if process.poll() is None:
        process.kill()
        process.wait()
    log.close()


def post(base, path, body):
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_every_201_is_stored_across_sigterm(server):
    base, process, count_stored = server
    acknowledged, lock, stop = [], threading.Lock(), threading.Event()

    def client():
        while not stop.is_set():
            event_id = str(uuid.uuid4())
            body = {"id": event_id, "user_id": str(uuid.uuid4()), "movie_id": str(uuid.uuid4()), "event_type": "start"}
            try:
                status, _ = post(base, "/api/v1/analytics/events", body)
            except OSError:  # the server went away before answering: not acknowledged
                return
            if status == 201:
                with lock:
                    acknowledged.append(event_id)

    clients = [threading.Thread(target=client) for _ in range(12)]
    for c in clients:
        c.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 50 and time.monotonic() < deadline:  # under load
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    stop.set()
    for c in clients:
        c.join(timeout=30)
    assert len(acknowledged) >= 50
    assert count_stored(acknowledged) == len(acknowledged)


def test_a_batch_and_errors_over_real_http(server, tmp_path):
    base, _, _ = server
    # DEBUG on and no API key yet (the `make run` default): open, and the server said so.
    assert "API access is OPEN" in (tmp_path / "gunicorn.log").read_text()
    user = str(uuid.uuid4())
    items = [{"id": str(uuid.uuid4()), "user_id": user, "movie_id": str(uuid.uuid4()), "event_type": "stream_start"}
             for _ in range(3)]
    assert post(base, "/api/v1/analytics/events/batch", items) == (201, {"accepted": 3})
    status, body = post(base, "/api/v1/analytics/events/batch", [items[0], {"user_id": user}])
    assert status == 400 and body["errors"][0] == {} and {"movie_id", "event_type"} <= set(body["errors"][1])
    with urllib.request.urlopen(f"{base}/api/v1/analytics/user/{user}/stats?days=1") as response:
        assert json.loads(response.read())["movies_started"] == 3
    with pytest.raises(urllib.error.HTTPError) as missing:  # DEBUG is on in this server: still JSON
        urllib.request.urlopen(f"{base}/no/such/page")
    assert missing.value.code == 404 and json.loads(missing.value.read()) == {"detail": "Not Found"}
