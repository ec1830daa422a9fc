"""Prometheus metrics of the service (prometheus-client), served at /metrics.

With several gunicorn workers set PROMETHEUS_MULTIPROC_DIR to an empty directory so the
workers' figures are summed (prometheus-client multiprocess mode).
"""

import os

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUEST_SECONDS = Histogram(
    "analytics_http_request_duration_seconds",
    "HTTP request latency by endpoint (URL route), method and status.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS_INGESTED = Counter(
    "analytics_events_ingested_total", "Events newly stored, by way in (http, kafka).", ["path"]
)
EVENTS_DUPLICATE = Counter(
    "analytics_events_duplicate_total", "Events skipped because their id was already stored.", ["path"]
)
EVENTS_SUPPRESSED = Counter(
    "analytics_events_suppressed_total",
    "Events acknowledged but not stored because their user was erased (suppression list).",
    ["path"],
)
INSERT_SECONDS = Histogram(
    "analytics_insert_duration_seconds",
    "Time of one de-duplicating insert into ClickHouse (look-up and INSERT).",
    ["path"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
INSERT_ROWS = Histogram(
    "analytics_insert_batch_rows",
    "Events per insert batch.",
    ["path"],
    buckets=(1, 10, 100, 1000, 5000, 10000, 50000, 100000),
)
CONSUMER_LAG = Gauge(
    "analytics_consumer_lag", "Kafka consumer lag (messages) per partition.", ["topic", "partition"],
    multiprocess_mode="max",
)
DLQ_MESSAGES = Counter("analytics_dlq_messages_total", "Messages sent to the dead-letter topic.", ["topic"])


def render():
    """The exposition text of every metric (summed over workers in multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
