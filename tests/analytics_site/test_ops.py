"""/ready and /metrics."""

from django.db import connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder


def test_ready_when_clickhouse_answers_and_migrated(ch, client):
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "clickhouse": "ok", "migrations": "ok"}


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
