"""Operational endpoints: readiness (/ready) and Prometheus metrics (/metrics)."""

from django.db import DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpResponse, JsonResponse

from . import metrics


def _pending_migrations(alias):
    connection = connections[alias]
    executor = MigrationExecutor(connection)
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def ready(request):
    """200 when ClickHouse answers and both databases are fully migrated, else 503."""
    body = {"status": "ready", "clickhouse": "ok", "migrations": "ok"}
    try:
        with connections["clickhouse"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchall()
    except DatabaseError as e:
        body.update(status="not ready", clickhouse=str(e).splitlines()[0][:200])
        return JsonResponse(body, status=503)
    try:
        pending = sum(_pending_migrations(alias) for alias in ("default", "clickhouse"))
    except DatabaseError as e:
        pending, body["migrations"] = None, str(e).splitlines()[0][:200]
    if pending:
        body["migrations"] = f"{pending} pending; run manage.py migrate"
    if pending != 0:
        body["status"] = "not ready"
        return JsonResponse(body, status=503)
    return JsonResponse(body)


def metrics_view(request):
    return HttpResponse(metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8")
