"""The consumer's configuration: one `ConsumerConfig`, built from Django settings, checked
once, and turned into kafka-python's options."""

import gc
import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from viewing.services import LOOKUP_CHUNK

from .errors import ConfigurationError

# Bytes a fetch may bring per partition (kafka-python's default: 1 MiB, ~3,000 messages of a
# few hundred bytes, less than a batch). Measured end to end (docs/kafka.md, Throughput): 4 MiB
# ~15 % faster than 1 or 2 MiB, and no better at 16 MiB. Buffered data stays bounded: at most
# this per assigned partition, and kafka-python's fetch_max_bytes (50 MiB) per broker.
FETCH_PARTITION_BYTES = 4 * 1024 * 1024


# The cyclic garbage collector's thresholds for a consumer process (consume_stream). With the
# defaults (700, 10, 10) it walks the batches' tens of thousands of row dicts, UUIDs and records
# over and over (perf: ~18 % of consume_stream's CPU); rows are freed by reference counting
# anyway. Measured in one process, reading and storing 60,000 messages in batches of 20,000,
# four interleaved rounds each: 30.7 µs a message (median) with the defaults, 21.3 with
# (50,000, 20, 100). A first generation of 500,000 objects lets the collector find most of a
# stored batch already freed instead of walking the batch being read (py-spy: 11 % of the
# loop's thread in the collector at 50,000): 22.9 -> 21.4 µs a message (CPU, five interleaved
# pairs on a journaled file system), the same peak RSS (~450 MiB at 60,000 messages).
CONSUMER_GC_THRESHOLDS = (500_000, 20, 100)


def consumer_gc_tune() -> tuple[int, int, int]:
    """Set CONSUMER_GC_THRESHOLDS for this process; returns the thresholds it had. For a
    process that only consumes: the API server's consumer thread leaves the server's alone."""
    before = gc.get_threshold()
    gc.set_threshold(*CONSUMER_GC_THRESHOLDS)
    return before


@dataclass(frozen=True)
class ConsumerConfig:
    """Everything one consumer-group member needs to know. Tests build it directly; the
    command and the server thread use from_settings()."""

    bootstrap_servers: str
    topics: list[str]
    group_id: str
    dlq_topic: str
    batch_size: int = 20000
    batch_bytes: int = 32 * 1024 * 1024
    flush_interval: float = 1.0
    session_timeout_ms: int = 10000
    heartbeat_interval_ms: int = 3000
    max_poll_interval_ms: int = 300000
    bootstrap_timeout_ms: int = 10000
    insert_timeout: float = 30
    poison_limit: int = 1000
    retention_days: int = 365
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    using: str = "clickhouse"

    def __post_init__(self) -> None:
        object.__setattr__(self, "topics", list(self.topics))
        if self.batch_size < 1 or self.batch_bytes < 1 or self.flush_interval <= 0:
            raise ConfigurationError("The batch size and bytes must be at least 1 and the flush interval positive.")
        if self.poison_limit < 1:
            raise ConfigurationError("KAFKA_POISON_LIMIT must be at least 1.")
        # One flush attempt is the id look-ups plus the insert, each bounded by the query
        # timeout. Retries happen between polls, so only one attempt must fit in the poll
        # interval, or the broker would evict the member mid-flush.
        statements = math.ceil(self.batch_size / LOOKUP_CHUNK) + 1
        if statements * self.insert_timeout * 1000 >= self.max_poll_interval_ms:
            raise ConfigurationError(
                f"A flush of {self.batch_size} rows may take {statements} × {self.insert_timeout} s "
                f"(CLICKHOUSE_QUERY_TIMEOUT), more than KAFKA_MAX_POLL_INTERVAL_MS="
                f"{self.max_poll_interval_ms}: lower the batch size or the timeout, or raise the interval."
            )

    @classmethod
    def from_settings(cls, **overrides: Any) -> "ConsumerConfig":
        """The configuration in Django settings; keyword arguments that are not None override it."""
        options = {
            "bootstrap_servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "topics": settings.KAFKA_TOPICS,
            "group_id": settings.KAFKA_CONSUMER_GROUP,
            "dlq_topic": settings.KAFKA_DLQ_TOPIC,
            "batch_size": settings.KAFKA_BATCH_SIZE,
            "batch_bytes": settings.KAFKA_BATCH_BYTES,
            "flush_interval": settings.KAFKA_FLUSH_INTERVAL,
            "session_timeout_ms": settings.KAFKA_SESSION_TIMEOUT_MS,
            "heartbeat_interval_ms": settings.KAFKA_HEARTBEAT_INTERVAL_MS,
            "max_poll_interval_ms": settings.KAFKA_MAX_POLL_INTERVAL_MS,
            "bootstrap_timeout_ms": settings.KAFKA_BOOTSTRAP_TIMEOUT_MS,
            "insert_timeout": settings.CLICKHOUSE_QUERY_SETTINGS["max_execution_time"],
            "poison_limit": settings.KAFKA_POISON_LIMIT,
            "retention_days": settings.RETENTION_DAYS,
            "backoff_max": settings.KAFKA_RETRY_BACKOFF_MAX,
        }
        options.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**options)

    def consumer_options(self) -> dict[str, Any]:
        """KafkaConsumer's keyword arguments for this member."""
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "group_id": self.group_id,
            # Offsets are committed by hand after the insert; a new group reads everything.
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
            "max_poll_interval_ms": self.max_poll_interval_ms,
            "max_poll_records": self.batch_size,
            "max_partition_fetch_bytes": FETCH_PARTITION_BYTES,
            "request_timeout_ms": max(30000, self.session_timeout_ms + 5000),
            # Fail the start-up check in seconds, not kafka-python's default 30 s.
            "bootstrap_timeout_ms": self.bootstrap_timeout_ms,
        }
