"""The consumer loop (StreamConsumer): poll → process → flush (one insert) → commit, until a
stop is requested (a signal only sets a flag). Its parts: config, offsets, dlq, stats, rebalance.

A full batch is stored by a store thread while the loop reads the next one: the engine works
without the GIL, so reading and decoding (Python) and the insert (the engine) share the two
cores instead of taking turns. Offsets are committed by the loop, only once the store is done,
and batches are stored in order: at most one is being stored (or waits for its retry) while the
next fills, and a failed one is stored again before anything newer.
"""

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from django.db import connections
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
        self.batcher = Batcher(size=config.batch_size, interval=config.flush_interval, max_bytes=config.batch_bytes)
        # The batch taken from the batcher and not stored yet: being stored by the store thread
        # (_storing set) or, after a failure, waiting for its retry (_storing None).
        self.pending: Batch | None = None
        self._storing: Future | None = None
        self._store_started = 0.0
        self._store_thread: ThreadPoolExecutor | None = None
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
                self._reap(wait=False)
                if self.retry.retry_at is not None:
                    if self.retry.due():
                        self._flush()
                elif self.batcher.due():
                    self._flush_behind()
                if max_messages is not None and stats.consumed >= max_messages:
                    break
                if exit_on_idle is not None and self.idle.expired(exit_on_idle, buffered=self.unstored()) \
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

    def unstored(self) -> int:
        """Messages read and not stored yet: buffered, being stored, or waiting for a retry."""
        return len(self.batcher) + (len(self.pending) if self.pending is not None else 0)

    def _poll_timeout_ms(self) -> int:
        waits = [0.5]
        if self._storing is not None:
            waits.append(0.05)  # come back soon to commit what the store thread finished
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

    def _store(self, batch: Batch) -> int:
        """Dead letters, then rows (one insert); the number of new events. Raises on failure.
        Runs on the store thread, or on the loop's (retries, shutdown, rebalance)."""
        self.dead_letters.send(batch.dead_letters)
        new = events_store(events=batch.rows, path="kafka", using=self.config.using) if batch.rows else 0
        if self.on_stored is not None:
            self.on_stored(batch)
        return new

    def _flush_behind(self) -> None:
        """Hand the due batch to the store thread and go on reading; first wait for the one it
        is storing (batches are stored and committed in order)."""
        if self._storing is not None and not self._reap(wait=True):
            return  # it failed: it is retried before anything newer
        if self.pending is not None or not len(self.batcher):
            return
        if self._store_thread is None:
            self._store_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-store")
        self.pending, self._store_started = self.batcher.take(), time.monotonic()
        self._storing = self._store_thread.submit(self._store, self.pending)

    def _reap(self, *, wait: bool, commit: bool = True) -> bool | None:
        """Finish the store thread's batch if it is done (or once it is, with `wait`): account
        and commit it (`commit`: the loop's thread), or keep it for a retry. True when stored,
        False when failed, None when nothing was finished."""
        future = self._storing
        if future is None or not (wait or future.done()):
            return None
        self._storing = None
        try:
            new = future.result()
        except Exception as e:
            self._store_failed(self.pending, e)
            return False
        batch, self.pending = self.pending, None
        self._stored(batch, new, time.monotonic() - self._store_started)
        if commit:
            self.offsets.commit(self.consumer, batch.offsets)
        return True

    def _store_now(self, batch: Batch) -> bool:
        """Store `batch` on this thread; on failure keep it as the pending batch (retried first)."""
        started = time.monotonic()
        try:
            new = self._store(batch)
        except Exception as e:
            self.pending = batch
            self._store_failed(batch, e)
            return False
        self.pending = None
        self._stored(batch, new, time.monotonic() - started)
        return True

    def _flush(self) -> bool:
        """Store, in order, the batch being stored or waiting for its retry and then the
        buffered one, committing each; on a failure keep it and schedule a retry."""
        if self._storing is not None and not self._reap(wait=True):
            return False
        while (batch := self.pending or (self.batcher.take() if len(self.batcher) else None)) is not None:
            if not self._store_now(batch):
                return False
            self.offsets.commit(self.consumer, batch.offsets)
        self.retry.retry_at = None
        return True

    def _store_failed(self, batch: Batch, error: Exception) -> None:
        delay = self.retry.failed()
        self.stats.flush_failed(describe(error), self._lag())
        log.warning("Storing %d messages failed (attempt %d): %s. Offsets not committed; the batch "
                    "is kept and retried in %.1f s.", len(batch), self.retry.failures, self.stats.last_error, delay)

    def _stored(self, batch: Batch, new: int, seconds: float) -> None:
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
        """Store, once and in order, the batch being stored or waiting for its retry and the
        buffered one (no waiting for retries while the group rebalances); returns the offsets
        to commit, or None."""
        self.idle.revoked()
        if not revoked:
            return None
        offsets = self.offsets.to_commit({})
        in_flight = self.pending if self._storing is not None else None
        stored = self._reap(wait=True, commit=False) is not False
        if stored and in_flight is not None:
            offsets.update(in_flight.offsets)
        while stored and (batch := self.pending or (self.batcher.take() if len(self.batcher) else None)):
            stored = self._store_now(batch)
            if stored:
                offsets.update(batch.offsets)
        if not stored:  # not committed, so whoever owns the partitions next reads them again
            log.warning("Storing %d messages before a rebalance failed: %s; dropped from the "
                        "buffer, they are read again after the rebalance.", self.unstored(),
                        self.stats.last_error)
            self.pending = None
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
        self._reap(wait=True, commit=False)  # the partitions are someone else's: nothing to commit
        if self.unstored():
            log.warning("Group membership lost; dropping %d buffered messages (not committed, "
                        "the new owner reads them again).", self.unstored())
        self.pending = None
        self.batcher.clear()

    def _shutdown(self) -> None:
        """Flush what is buffered (retrying a little while ClickHouse is away), commit, leave."""
        deadline = time.monotonic() + max(10.0, self.config.backoff_max)
        while (self.unstored() or self._storing) and not self._flush() and self.retry.retry_at <= deadline:
            # Stopping: no more polls, so a plain wait; bounded by the deadline.
            time.sleep(max(0.0, self.retry.retry_at - time.monotonic()))
        leftover, stats = self.unstored(), self.stats
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
        if self._store_thread is not None:
            # A store still running (after an error of the loop) finishes uncommitted; the
            # thread's database connection goes with it.
            self._store_thread.submit(lambda: connections[self.config.using].close()).result()
            self._store_thread.shutdown()
            self._store_thread = None
        self.pending = self._storing = None
        if self.consumer is not None:
            try:
                self.consumer.close(autocommit=False)
            except Exception as e:
                log.warning("Closing the Kafka consumer failed: %s", e)
            self.consumer = None
        self.dead_letters.close()
        if self.run_to_end is not None:
            self.run_to_end.close()
