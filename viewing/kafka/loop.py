"""The consumer loop (StreamConsumer): poll → process → flush (one insert) → commit, until a
stop is requested (a signal only sets a flag). Its parts: config, offsets, dlq, stats, rebalance."""

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from analytics_site import metrics
from viewing.services import events_store

from .backoff import Backoff
from .batcher import Batch, Batcher
from .config import ConsumerConfig
from .connect import check_clickhouse, open_consumer
from .dlq import DeadLetterProducer, PoisonPolicy
from .errors import ConsumerError, describe
from .idle import IdleClock, RunToEnd
from .offsets import OffsetLedger, Partition, partition_name
from .processor import process_records
from .stats import ConsumerStats

log = logging.getLogger(__name__)


class StreamConsumer:
    """One consumer-group member. Used by `manage.py consume_stream` and by the API server's
    background thread: check() verifies Kafka and ClickHouse, run() consumes until
    request_stop(), --exit-on-idle or --max-messages. Implements the rebalance hooks."""

    def __init__(self, config: ConsumerConfig, *, on_stored: Callable[[Batch], None] | None = None) -> None:
        self.config = config
        # Called with the batch after its rows are stored and before its offsets are
        # committed: instrumentation, and the crash point the SIGKILL test uses.
        self.on_stored = on_stored
        self.batcher = Batcher(size=config.batch_size, interval=config.flush_interval)
        self.stats = ConsumerStats(config.group_id)
        self.offsets = OffsetLedger()
        self.poison = PoisonPolicy(limit=config.poison_limit, dlq_topic=config.dlq_topic)
        self.dead_letters = DeadLetterProducer(bootstrap_servers=config.bootstrap_servers, topic=config.dlq_topic)
        self.consumer: KafkaConsumer | None = None
        self._stop = threading.Event()
        self.retry = Backoff(initial=config.backoff_initial, maximum=config.backoff_max)
        self.idle = IdleClock(join_grace_s=config.session_timeout_ms / 1000)
        self.run_to_end: RunToEnd | None = None  # --exit-on-idle's check of the whole group

    def check(self) -> None:
        """Connect to ClickHouse and Kafka, or raise ConsumerError saying which is missing."""
        check_clickhouse(self.config.using)
        if self.consumer is None:
            self.consumer = open_consumer(self.config, self)

    def request_stop(self) -> None:
        """Ask the loop to flush, commit, leave the group and return. Safe in a signal handler."""
        self._stop.set()

    def run(self, *, exit_on_idle: float | None = None, max_messages: int | None = None) -> dict[str, Any]:
        """Consume until stopped; returns the stats snapshot. Raises ConsumerError when Kafka or
        ClickHouse is missing at start, on a poison flood, or (--exit-on-idle) when the group
        cannot read every partition to its end (idle.NotReadToEnd)."""
        if self.consumer is None:
            self.check()
        config, stats = self.config, self.stats
        self.run_to_end = RunToEnd.of(config, exit_on_idle) if exit_on_idle is not None else None
        stats.state = "running"
        self.idle.touch()
        log.info("Consuming %s as group %s from %s (batch %d rows or %.1f s).", ", ".join(config.topics),
                 config.group_id, config.bootstrap_servers, config.batch_size, config.flush_interval)
        try:
            while not self._stop.is_set():
                if self.retry.due() if self.retry.retry_at is not None else self.batcher.due():
                    self._flush()
                if max_messages is not None and stats.consumed >= max_messages:
                    break
                if exit_on_idle is not None and self.idle.expired(exit_on_idle, buffered=len(self.batcher)) \
                        and self.run_to_end.done(self.consumer, self.offsets):
                    break
                self._pause_when_full()
                limit = self.batcher.room() or 1
                if max_messages is not None:
                    limit = max(1, min(limit, max_messages - stats.consumed))
                records = self.consumer.poll(timeout_ms=self._poll_timeout_ms(), max_records=limit)
                if records:
                    self._process(records)
            self._shutdown()
        except BaseException:
            stats.state = "failed"
            self._close()
            raise
        return stats.snapshot()

    def _poll_timeout_ms(self) -> int:
        waits = [0.5]
        if self.retry.retry_at is not None:
            waits.append(self.retry.retry_at - time.monotonic())
        elif (left := self.batcher.time_left()) is not None:
            waits.append(left)
        return max(0, int(min(waits) * 1000))

    def _pause_when_full(self) -> None:
        """Bounded memory: while a full batch waits to be stored, stop fetching (poll still
        runs, so the member stays in the group) and resume once it is stored."""
        assignment, paused = self.consumer.assignment(), self.consumer.paused()
        if self.batcher.full and assignment - paused:
            self.consumer.pause(*(assignment - paused))
            if not self.stats.paused:
                log.info("Buffer full (%d messages not stored yet): fetching paused.", len(self.batcher))
            self.stats.paused = True
        elif not self.batcher.full and paused:
            self.consumer.resume(*paused)
            self.stats.paused = False
            log.info("Fetching resumed.")

    def _process(self, records: Mapping[TopicPartition, list]) -> None:
        for tp, messages in records.items():
            self.offsets.seen(tp.topic, tp.partition, messages[0].offset)
        count = process_records(records, batcher=self.batcher, poison=self.poison, now=datetime.now(UTC),
                                retention_days=self.config.retention_days)
        self.stats.read(count, len(self.batcher))
        self.idle.touch()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("Read %d messages; %d buffered, %d consumed in all.", count, len(self.batcher),
                      self.stats.consumed)
        if self.poison.exceeded:
            # The run up to the limit is dead-lettered and committed; what follows it stays
            # in the topic, uncommitted (the consumer is closed without committing more).
            self._flush()
            raise self.poison.error()

    # --- storing and committing -------------------------------------------------------------

    def _store(self) -> Exception | None:
        """Dead letters, then rows (one insert), then the accounts; None when stored, else the
        error (the batch stays buffered)."""
        batch, started = self.batcher.batch, time.monotonic()
        try:
            self.dead_letters.send(batch.dead_letters)
            new = events_store(events=batch.rows, path="kafka", using=self.config.using) if batch.rows else 0
            if self.on_stored is not None:
                self.on_stored(batch)
        except Exception as e:
            return e
        self._stored(batch, new, time.monotonic() - started)
        return None

    def _flush(self) -> bool:
        """Store the batch and commit its offsets; on failure keep it and schedule a retry."""
        batch = self.batcher.batch
        if not len(batch):
            self.retry.retry_at = None
            return True
        if (error := self._store()) is not None:
            delay = self.retry.failed()
            self.stats.flush_failed(describe(error), self._lag())
            log.warning("Storing %d messages failed (attempt %d): %s. Offsets not committed; the batch "
                        "is kept and retried in %.1f s.", len(batch), self.retry.failures, self.stats.last_error,
                        delay)
            return False
        self.offsets.commit(self.consumer, batch.offsets)
        return True

    def _stored(self, batch: Batch, new: int, seconds: float) -> None:
        self.batcher.take()
        self.offsets.stored(batch.offsets)
        self.idle.touch()  # after an outage the rest is still to be fetched: not idle yet
        if self.retry.failures:
            log.info("Storing works again after %d failed attempts.", self.retry.failures)
        self.retry.reset()
        letters, lag = len(batch.dead_letters), self._lag()
        self.stats.flushed(rows=len(batch.rows), new=new, dead_letters=letters, seconds=seconds,
                           buffered=len(self.batcher), lag=lag)
        if letters:
            metrics.DLQ_MESSAGES.labels(self.config.dlq_topic).inc(letters)
        metrics.consumer_lag_set(lag)

    def _lag(self) -> dict[str, int]:
        if self.consumer is None:
            return {}
        return self.offsets.lag(self.consumer.assignment(), self.consumer.highwater)

    # --- rebalance hooks (called on kafka-python's IO thread; see rebalance.py) -------------

    def on_revoked(self, revoked: set[TopicPartition]) -> dict[Partition, int] | None:
        """Store the batch once (no waiting for retries while the group rebalances); returns
        the offsets to commit, or None."""
        self.idle.revoked()
        if not revoked:
            return None
        batch, offsets = self.batcher.batch, self.offsets.to_commit({})
        if len(batch):
            if (error := self._store()) is None:
                offsets.update(batch.offsets)
            else:  # not committed, so whoever owns the partitions next reads them again
                log.warning("Storing %d messages before a rebalance failed: %s; dropped from the "
                            "buffer, they are read again after the rebalance.", len(batch), describe(error))
                self.batcher.clear()
                self.retry.retry_at = None
        return offsets or None

    def on_committed(self, offsets: Mapping[Partition, int]) -> None:
        self.offsets.committed(offsets)

    def on_assigned(self, assigned: set[TopicPartition]) -> None:
        self.idle.assigned()
        self.offsets.keep_only(assigned)
        self.stats.assignment = sorted(partition_name(tp.topic, tp.partition) for tp in assigned)
        self.stats.paused = False
        log.info("Assigned partitions: %s.", ", ".join(self.stats.assignment) or "none")

    def on_lost(self, lost: set[TopicPartition]) -> None:
        if len(self.batcher):
            log.warning("Group membership lost; dropping %d buffered messages (not committed, "
                        "the new owner reads them again).", len(self.batcher))
        self.batcher.clear()

    def _shutdown(self) -> None:
        """Flush what is buffered (retrying a little while ClickHouse is away), commit, leave."""
        deadline = time.monotonic() + max(10.0, self.config.backoff_max)
        while len(self.batcher) and not self._flush() and self.retry.retry_at <= deadline:
            # Stopping: no more polls, so a plain wait; bounded by the deadline.
            time.sleep(max(0.0, self.retry.retry_at - time.monotonic()))
        leftover, stats = len(self.batcher), self.stats
        self._close()
        if leftover:
            stats.state = "failed"
            raise ConsumerError(f"Stopped with {leftover} messages not stored (ClickHouse unavailable: "
                                f"{stats.last_error}). Their offsets are not committed: they are read "
                                f"again on the next start.")
        stats.state = "stopped"
        log.info("Stopped: %d consumed, %d stored, %d duplicates, %d dead-lettered.",
                 stats.consumed, stats.stored, stats.duplicates, stats.dead_lettered)

    def _close(self) -> None:
        # close() calls on_revoked: nothing may be left to store there, and autocommit=False
        # makes sure only offsets of stored rows are ever committed.
        self.batcher.clear()
        if self.consumer is not None:
            try:
                self.consumer.close(autocommit=False)
            except Exception as e:
                log.warning("Closing the Kafka consumer failed: %s", e)
            self.consumer = None
        self.dead_letters.close()
        if self.run_to_end is not None:
            self.run_to_end.close()
