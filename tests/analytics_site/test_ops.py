"""/ready and /metrics."""

import os

import pytest
from django.conf import settings as django_settings
from django.db import connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from analytics_site.ops import min_free_bytes


def test_ready_when_clickhouse_answers_and_migrated(ch, client):
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "clickhouse": "ok", "migrations": "ok", "disk": "ok"}


def data_disk():
    """Free and total bytes of the file system of the embedded data directory."""
    stat = os.statvfs(django_settings.CLICKHOUSE_DATA_DIR)
    return stat.f_bavail * stat.f_frsize, stat.f_blocks * stat.f_frsize


@pytest.mark.embedded
def test_the_disk_is_in_metrics_and_ready_fails_below_the_floor(ch, client, settings):
    text = client.get("/metrics").content.decode()
    (free,) = [float(line.split()[-1]) for line in text.splitlines()
               if line.startswith('analytics_clickhouse_disk_free_bytes{disk="default"}')]
    (total,) = [float(line.split()[-1]) for line in text.splitlines()
                if line.startswith('analytics_clickhouse_disk_total_bytes{disk="default"}')]
    real_free, real_total = data_disk()
    assert total == real_total
    assert abs(free - real_free) < 0.01 * real_total  # others write to this disk meanwhile
    # The default floor: 1 GiB or 5 %, whichever is smaller.
    assert min_free_bytes(real_total) == min(1024**3, real_total // 20)
    settings.READY_MIN_FREE_BYTES = real_total  # more than can ever be free
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "not ready"
    assert response.json()["disk"].startswith("default: ")
    assert response.json()["disk"].endswith(f"bytes free of {real_total}, below {real_total} (READY_MIN_FREE_BYTES)")
    settings.READY_MIN_FREE_BYTES = 0
    assert client.get("/ready").status_code == 200


def test_not_ready_while_a_migration_is_pending(ch, client):
    recorder = MigrationRecorder(connections["clickhouse"])
    (latest,) = [name for app, name in MigrationLoader(None).graph.leaf_nodes() if app == "viewing"]
    recorder.record_unapplied("viewing", latest)
    try:
        response = client.get("/ready")
        assert response.status_code == 503
        assert response.json()["migrations"] == "1 pending; run manage.py migrate"
    finally:
        recorder.record_applied("viewing", latest)
    assert client.get("/ready").status_code == 200


def test_metrics_count_requests_per_route(ch, client):
    client.get("/health")
    text = client.get("/metrics").content.decode()
    assert 'analytics_http_request_duration_seconds_count{method="GET",route="health",status="200"}' in text
    for name in ("analytics_events_ingested_total", "analytics_insert_duration_seconds", "analytics_consumer_lag"):
        assert f"# HELP {name}" in text


def test_ingestion_metrics_count_new_and_duplicate_events_per_path(ch):
    import uuid
    from datetime import datetime

    from prometheus_client import REGISTRY

    from viewing.services import events_store

    def value(name, path):
        return REGISTRY.get_sample_value(name, {"path": path}) or 0.0

    before = {n: value(n, "kafka") for n in ("analytics_events_ingested_total", "analytics_events_duplicate_total")}
    rows = [
        {"id": uuid.uuid4(), "user_id": uuid.uuid4(), "movie_id": uuid.uuid4(), "event_type": "start",
         "position_seconds": 0, "event_time": datetime(2026, 11, 27), "session_id": None, "metadata": "{}"}
        for _ in range(3)
    ]
    events_store(events=rows, path="kafka")
    events_store(events=rows[:2], path="kafka")
    assert value("analytics_events_ingested_total", "kafka") - before["analytics_events_ingested_total"] == 3
    assert value("analytics_events_duplicate_total", "kafka") - before["analytics_events_duplicate_total"] == 2
