"""Prometheus metrics of the service (prometheus-client), served at /metrics.

With several gunicorn workers set PROMETHEUS_MULTIPROC_DIR to an empty directory so the
workers' figures are summed (prometheus-client multiprocess mode).
"""

import os
from collections.abc import Mapping

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
BATCHES_CHECKED = Counter(
    "analytics_batches_checked_total",
    "HTTP batches stored, by what read and checked them: the engine (its path for the common shape) or the rules.",
    ["by"],
)
UNFINISHED_INSERTS = Gauge(
    "analytics_unfinished_inserts",
    "Inserts that failed after the raw table took their rows, waiting to be completed in the views.",
    multiprocess_mode="livesum",
)
CONSUMER_LAG = Gauge(
    "analytics_consumer_lag", "Kafka consumer lag (messages) per partition.", ["topic", "partition"],
    multiprocess_mode="max",
)
DLQ_MESSAGES = Counter("analytics_dlq_messages_total", "Messages sent to the dead-letter topic.", ["topic"])

# The health of this process's Kafka consumer thread (ENABLE_KAFKA), set when /metrics is read.
CONSUMER_STATE = Gauge(
    "analytics_consumer_state",
    "1 for the state the in-process Kafka consumer thread is in, 0 for the others.",
    ["state"], multiprocess_mode="liveall",
)
CONSUMER_LAST_FLUSH = Gauge(
    "analytics_consumer_last_flush_timestamp_seconds",
    "Unix time of the consumer's last successful flush (rows stored, offsets committed).",
    multiprocess_mode="max",
)
CONSUMER_RATE = Gauge(
    "analytics_consumer_messages_per_second",
    "Messages the consumer read per second, averaged over the last minute.",
    multiprocess_mode="livesum",
)


# ClickHouse's disks (system.disks: the embedded engine's data directory, or a server's), set
# when /metrics or /ready is read.
DISK_FREE = Gauge("analytics_clickhouse_disk_free_bytes", "Free space on a ClickHouse disk.", ["disk"],
                  multiprocess_mode="max")
DISK_TOTAL = Gauge("analytics_clickhouse_disk_total_bytes", "Size of a ClickHouse disk.", ["disk"],
                   multiprocess_mode="max")


def consumer_lag_set(lag: Mapping[tuple[str, int], int]) -> None:
    """The consumer's lag per (topic, partition), after a flush."""
    for (topic, partition), messages in lag.items():
        CONSUMER_LAG.labels(topic, str(partition)).set(messages)


def consumer_health_refresh() -> None:
    """Set the consumer gauges from this process's consumer thread, if it has one."""
    from viewing.kafka.thread import STATES, consumer_thread

    thread = consumer_thread()
    if thread is None:
        return
    health = thread.health()
    for state in STATES:
        CONSUMER_STATE.labels(state.replace(" ", "_")).set(1 if state == health["state"] else 0)
    if health["last_flush"]:
        CONSUMER_LAST_FLUSH.set(health["last_flush"]["timestamp"])
    CONSUMER_RATE.set(health["messages_per_second"])


def render():
    """The exposition text of every metric (summed over workers in multiprocess mode)."""
    consumer_health_refresh()
    from .ops import disk_space  # ops imports this module

    try:
        disk_space()  # sets DISK_FREE / DISK_TOTAL
    except Exception:  # ClickHouse away: the other metrics still answer
        pass
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
