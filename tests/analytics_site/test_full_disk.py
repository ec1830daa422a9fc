"""A data directory that fills up, for real: a 48 MiB tmpfs under a gunicorn server, under
`generate_events` and under `consume_stream`. Every 201 is stored, every refused request is a 507 naming
NOT_ENOUGH_SPACE, the server stays up, and once the disk grows it recovers by itself and the
re-sent batches are stored exactly once — raw table and every aggregate equal the reference
of what was acknowledged.

Needs root (mount); skipped with the reason otherwise.
"""

import json
import os
import random
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from tests.kafka_broker import TEST_HEARTBEAT_INTERVAL_MS, TEST_SESSION_TIMEOUT_MS

pytestmark = [pytest.mark.slow, pytest.mark.embedded]

BATCH = "/api/v1/analytics/events/batch"
MIGRATE = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
"""
# Run after the server stopped: every table against the reference of the acknowledged events.
COMPARE = """
import json, sys, uuid, django
from datetime import datetime
django.setup()
from tests.aggregates import tables_and_reference
events = json.load(open(sys.argv[1]))
for e in events:
    e["event_time"] = datetime.fromisoformat(e["event_time"]).replace(tzinfo=None)
    e["session_id"] = e["session_id"] and uuid.UUID(e["session_id"])
stored, expected = tables_and_reference(events)
print(json.dumps({name: stored[name] == expected[name] for name in stored}))
print(json.dumps({"raw": len(stored["viewing_events"]), "expected": len(expected["viewing_events"])}))
"""


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def grow(disk):
    subprocess.run(["mount", "-o", "remount,size=512m", str(disk)], check=True)


def environment(tmp_path, disk, port=0):
    return {
        **os.environ,
        "ANALYTICS_VAR_DIR": str(tmp_path / "var"),
        "CLICKHOUSE_DATA_DIR": str(disk / "clickhouse"),
        "DJANGO_SETTINGS_MODULE": "analytics_site.settings",
        "DJANGO_DEBUG": "true",  # no key in this fresh directory: the open mode
        "ENABLE_KAFKA": "false",
        "PORT": str(port),
    }


def run(script_or_args, env, *args):
    command = [sys.executable, "-c", script_or_args, *args] if isinstance(script_or_args, str) else script_or_args
    return subprocess.run(command, env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=300)


def post(base, path, body):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def get(base, path):
    try:
        with urllib.request.urlopen(base + path, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def events(rng, n):
    """Events of the last hour with ~2 KB of incompressible metadata each."""
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    return [{
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "user_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "movie_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "event_type": rng.choice(["start", "progress", "finish"]),
        "position_seconds": rng.randrange(7200),
        "event_time": (now - timedelta(seconds=rng.randrange(3600))).isoformat() + "Z",
        "session_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "metadata": {"pad": rng.randbytes(1000).hex()},
    } for _ in range(n)]


def compare(tmp_path, env, acknowledged):
    (tmp_path / "acknowledged.json").write_text(json.dumps(acknowledged))
    out = run(COMPARE, env, str(tmp_path / "acknowledged.json"))
    assert out.returncode == 0, out.stderr[-3000:]
    equal, counts = (json.loads(line) for line in out.stdout.strip().splitlines()[-2:])
    return equal, counts


def test_a_full_disk_under_http_batches(tmp_path, small_disk):
    port = _free_port()
    env = environment(tmp_path, small_disk, port)
    migrated = run(MIGRATE, env)
    assert migrated.returncode == 0, migrated.stderr
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    log = open(tmp_path / "gunicorn.log", "w")
    server = subprocess.Popen([gunicorn, "-c", "python:analytics_site.gunicorn_conf", "analytics_site.wsgi"],
                              env=env, cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, server, tmp_path)
        rng = random.Random(11)
        acknowledged, refused = [], []
        for _ in range(120):  # ~1 MB a batch: the 48 MiB disk fills long before
            batch = events(rng, 500)
            status, body = post(base, BATCH, batch)
            if status == 201:
                assert body == {"accepted": 500}
                acknowledged += batch
            else:
                assert (status, body.get("cause")) == (507, "NOT_ENOUGH_SPACE"), (status, body)
                refused.append(batch)
                if len(refused) >= 3:
                    break
        assert acknowledged and len(refused) == 3, (len(acknowledged), len(refused))
        single = events(rng, 1)[0]
        status, body = post(base, "/api/v1/analytics/events", single)
        assert (status, body.get("cause")) == (507, "NOT_ENOUGH_SPACE")
        assert server.poll() is None  # up, answering
        status, body = get(base, "/ready")  # below the floor (5 % of 48 MiB): traffic should move
        assert status == 503 and body["disk"].startswith("default: "), body
        grow(small_disk)
        assert get(base, "/ready")[0] == 200
        # Recovers by itself: the same process stores the re-sent batches.
        for batch in [*refused, [single]]:
            assert post(base, BATCH, batch) == (201, {"accepted": len(batch)})
            acknowledged += batch
        assert post(base, BATCH, refused[0]) == (201, {"accepted": 500})  # once more: kept once
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
    equal, counts = compare(tmp_path, env, acknowledged)
    assert counts == {"raw": len(acknowledged), "expected": len(acknowledged)}
    assert all(equal.values()), equal


def test_a_full_disk_stops_generate_events_with_one_line_and_a_rerun_completes(tmp_path, small_disk):
    env = environment(tmp_path, small_disk)
    migrated = run(MIGRATE, env)
    assert migrated.returncode == 0, migrated.stderr
    # Everything but ~3 MiB taken by a file: the engine runs out part-way through the events.
    filler = small_disk / "filler"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    with open(filler, "wb") as f:
        f.write(b"\0" * (free - 3 * 1024 * 1024))
    generate = [sys.executable, "manage.py", "generate_events", "--events", "100000", "--days", "2",
                "--batch-size", "10000", "--seed", "3", "--verbosity", "0"]
    failed = run(generate, env)
    assert failed.returncode == 1, failed.stdout + failed.stderr[-2000:]
    # The cause on one line (other lines are the service's log).
    cause = [line for line in failed.stderr.splitlines() if line.startswith("CommandError: ")]
    assert len(cause) == 1 and "Storing events failed (NOT_ENOUGH_SPACE) after " in cause[0], failed.stderr[-2000:]
    filler.unlink()
    rerun = run(generate, env)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    if "reached the raw table only" in cause[0]:  # a view had no room for a batch the raw table took
        rebuild = cause[0].split("`manage.py ")[1].split("`")[0].split()
        rebuilt = run([sys.executable, "manage.py", *rebuild], env)
        assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    counted = run("import django; django.setup()\n"
                  "from django.db import connections\n"
                  "c = connections['clickhouse'].cursor()\n"
                  "c.execute('SELECT count(), uniqExact(id) FROM viewing_events')\n"
                  "print(list(c.fetchall()[0]))", env)
    assert counted.stdout.strip() == "[100000, 100000]", counted.stderr[-2000:]
    verified = run([sys.executable, "manage.py", "verify_aggregates", "--days", "2"], env)
    assert verified.returncode == 0, verified.stdout + verified.stderr[-2000:]


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(base, process, tmp_path):
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
        time.sleep(0.2)


@pytest.mark.kafka
def test_a_full_disk_under_kafka_commits_only_what_is_stored(kafka, tmp_path, small_disk):
    env = {**environment(tmp_path, small_disk), "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
           "KAFKA_TOPICS": ",".join(kafka.topics), "KAFKA_CONSUMER_GROUP": kafka.group("disk"),
           "KAFKA_DLQ_TOPIC": kafka.dlq, "KAFKA_SESSION_TIMEOUT_MS": str(TEST_SESSION_TIMEOUT_MS),
           "KAFKA_HEARTBEAT_INTERVAL_MS": str(TEST_HEARTBEAT_INTERVAL_MS), "KAFKA_RETRY_BACKOFF_MAX": "1",
           "LOG_LEVEL": "INFO"}
    migrated = run(MIGRATE, env)
    assert migrated.returncode == 0, migrated.stderr
    filler = small_disk / "filler"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    with open(filler, "wb") as f:
        f.write(b"\0" * (free - 3 * 1024 * 1024))
    produced = events(random.Random(5), 3000)  # ~6 MB of metadata: twice what is free
    for e in produced:
        kafka.produce(kafka.topic("start"), {
            "event_id": e["id"], "user_id": e["user_id"], "movie_id": e["movie_id"], "action": e["event_type"],
            "timestamp": e["event_time"], "position_seconds": e["position_seconds"], "session_id": e["session_id"],
            "metadata": e["metadata"]})
    kafka.flush()
    consumer = subprocess.Popen([sys.executable, "manage.py", "consume_stream", "--skip-checks", "--exit-on-idle", "5",
                                 "--batch-size", "500"], env=env, cwd=settings.BASE_DIR,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    failures = []
    try:
        for line in consumer.stderr:
            if "failed (attempt" in line:
                failures.append(line)
                if len(failures) == 3:
                    break
        assert len(failures) == 3 and all("NOT_ENOUGH_SPACE" in line for line in failures), failures
        assert kafka.committed(kafka.group("disk")) != kafka.produced_offsets()  # the refused ones wait
        filler.unlink()
        rest = consumer.stderr.read()  # until it exits: everything stored, then idle
        assert consumer.wait(timeout=120) == 0, rest[-3000:]
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()
    assert kafka.committed(kafka.group("disk")) == kafka.produced_offsets()
    for e in produced:
        e["event_time"] = e["event_time"].removesuffix("Z")
    equal, counts = compare(tmp_path, env, produced)
    assert counts == {"raw": 3000, "expected": 3000}
    assert all(equal.values()), equal
