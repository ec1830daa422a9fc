"""Operational endpoints: readiness (/ready, open) and Prometheus metrics (/metrics, a `read`
key or a staff session)."""

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpResponse, JsonResponse
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.views import APIView

from . import metrics
from .exceptions import database_error_summary


def _pending_migrations(alias):
    connection = connections[alias]
    executor = MigrationExecutor(connection)
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def consumer_readiness() -> tuple[dict | None, bool]:
    """With ENABLE_KAFKA: this process's consumer health, and whether it lets the service be
    ready. Only a stopped consumer (a poison flood, a fatal error) does not: one that is
    backing off (no broker yet, ClickHouse away) retries by itself, and the API works."""
    if not settings.ENABLE_KAFKA:
        return None, True
    from viewing.kafka.thread import consumer_thread

    thread = consumer_thread()
    if thread is None:  # only the server process starts it (analytics_site/wsgi.py)
        return {"state": "not started"}, True
    health = thread.health()
    return health, health["state"] != "stopped"


# What system.disks says of ClickHouse's disks (the embedded data directory's file system, or
# a server's disks).
DISKS = "SELECT name, free_space, total_space FROM system.disks ORDER BY name"
GiB = 1024**3


def disk_space() -> list[tuple[str, int, int]]:
    """(disk, free bytes, total bytes) of every ClickHouse disk; sets the /metrics gauges."""
    with connections["clickhouse"].cursor() as cursor:
        cursor.execute(DISKS)
        disks = cursor.fetchall()
    for name, free, total in disks:
        metrics.DISK_FREE.labels(name).set(free)
        metrics.DISK_TOTAL.labels(name).set(total)
    return disks


def min_free_bytes(total: int) -> int:
    """READY_MIN_FREE_BYTES, or 1 GiB or 5 % of the disk, whichever is smaller."""
    if settings.READY_MIN_FREE_BYTES is not None:
        return settings.READY_MIN_FREE_BYTES
    return min(GiB, total // 20)


def disk_readiness() -> tuple[str, bool]:
    """"ok", or which disk is below its free-space floor (inserts would soon be refused)."""
    for name, free, total in disk_space():
        floor = min_free_bytes(total)
        if free < floor:
            return f"{name}: {free} bytes free of {total}, below {floor} (READY_MIN_FREE_BYTES)", False
    return "ok", True


def ready(request):
    """200 when ClickHouse answers, both databases are fully migrated, ClickHouse's disk has
    room (READY_MIN_FREE_BYTES) and (with ENABLE_KAFKA) the consumer thread has not stopped;
    else 503."""
    body = {"status": "ready", "clickhouse": "ok", "migrations": "ok", "disk": "ok"}
    kafka, kafka_ok = consumer_readiness()
    if kafka is not None:
        body["kafka"] = kafka
    try:
        with connections["clickhouse"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchall()
    except DatabaseError as e:
        body.update(status="not ready", clickhouse=database_error_summary(e))
        return JsonResponse(body, status=503)
    try:
        pending = sum(_pending_migrations(alias) for alias in ("default", "clickhouse"))
    except DatabaseError as e:
        pending, body["migrations"] = None, database_error_summary(e)
    if pending:
        body["migrations"] = f"{pending} pending; run manage.py migrate"
    try:
        body["disk"], disk_ok = disk_readiness()
    except DatabaseError as e:
        body["disk"], disk_ok = database_error_summary(e), False
    if pending != 0 or not kafka_ok or not disk_ok:
        body["status"] = "not ready"
        return JsonResponse(body, status=503)
    return JsonResponse(body)


class _AnyAccept(BaseContentNegotiation):
    """The answer is Prometheus text whatever Accept says; errors are JSON."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class MetricsApi(APIView):
    access_scope = "read"
    schema = None  # operational, not part of the analytics API's schema
    throttle_classes = []
    content_negotiation_class = _AnyAccept

    def get(self, request):
        return HttpResponse(metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8")
