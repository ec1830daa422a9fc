"""The consumer loop (StreamConsumer): polls the stream topics, stores each batch with one
insert, commits offsets only after that, dead-letters poison messages; and its counters."""

import json
import logging
import math
import threading
import time
import weakref
from datetime import UTC, datetime

from django.conf import settings
from django.db import connections
from kafka import AsyncConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka import errors as kafka_errors
from kafka.structs import OffsetAndMetadata

from analytics_site import metrics
from viewing.services import LOOKUP_CHUNK, events_store

from .batcher import Batcher, DeadLetter
from .processor import MessageInvalid, process_message

log = logging.getLogger(__name__)

# Loops alive in this process, for stats_snapshot() (health and metrics read it).
_loops = weakref.WeakSet()
# Bytes a fetch may bring per partition (kafka-python's default: 1 MiB, ~3,000 messages of a
# few hundred bytes, less than a batch). Measured end to end (docs/kafka.md, Throughput): 4 MiB
# ~15 % faster than 1 or 2 MiB, and no better at 16 MiB. Buffered data stays bounded: at most
# this per assigned partition, and kafka-python's fetch_max_bytes (50 MiB) per broker.
FETCH_PARTITION_BYTES = 4 * 1024 * 1024


class ConsumerError(Exception):
    """The loop cannot start or go on; the message says why and what to do."""


class PoisonFlood(ConsumerError):
    """Nearly everything read is invalid: a misconfigured producer, not a few bad messages."""


class ConsumerStats:
    """Counters of one loop. Written by the loop's thread only; readers take snapshot()
    (plain attribute reads and dict copies are atomic enough under the GIL)."""

    def __init__(self, group):
        self.group = group
        self.state = "starting"
        self.consumed = 0
        self.stored = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self.flushes = 0
        self.failed_flushes = 0
        self.buffered = 0
        self.paused = False
        self.assignment = []
        self.lag = {}
        self.last_flush = None
        self.last_error = None

    def snapshot(self):
        return {
            "group": self.group,
            "state": self.state,
            "consumed": self.consumed,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "dead_lettered": self.dead_lettered,
            "flushes": self.flushes,
            "failed_flushes": self.failed_flushes,
            "buffered": self.buffered,
            "paused": self.paused,
            "assignment": list(self.assignment),
            "lag": dict(self.lag),
            "total_lag": sum(self.lag.values()),
            "last_flush": dict(self.last_flush) if self.last_flush else None,
            "last_error": self.last_error,
        }


def stats_snapshot():
    """Counters of every consumer loop running in this process (a list, usually of one)."""
    return [loop.stats.snapshot() for loop in list(_loops)]


def _describe(error):
    """One line about an error: ClickHouse's own message when there is one (its text starts
    with a bare "Code: NN." line that says little)."""
    text = " ".join(str(error).split()) or type(error).__name__
    if "DB::Exception:" in text:
        text = text[text.index("DB::Exception:") + len("DB::Exception:"):].strip()
    return text[:300]


def _tp_name(topic, partition):
    return f"{topic}[{partition}]"


class _Listener(AsyncConsumerRebalanceListener):
    """Flush and commit before partitions go. kafka-python 3 runs listeners on its IO thread,
    where a blocking consumer call raises; the async variant can await the commit there. The
    main thread is blocked inside poll()/close() meanwhile, so the batch is not shared."""

    def __init__(self, loop):
        self.loop = loop

    async def on_partitions_revoked(self, revoked):
        self.loop._revoked()
        if not revoked:
            return
        offsets = self.loop._store_for_rebalance()
        if offsets:
            try:
                await self.loop.consumer.commit_async(self.loop._commit_map(offsets))
                self.loop._committed_ok(offsets)
            except Exception as e:  # stored but not committed: the next owner re-reads, ids de-duplicate
                log.warning("Commit before rebalance failed: %s; the next owner re-reads those rows "
                            "and skips them as duplicates.", e)

    async def on_partitions_assigned(self, assigned):
        self.loop._assigned(assigned)

    async def on_partitions_lost(self, lost):
        # Evicted: the partitions already belong to someone else; nothing can be committed.
        if len(self.loop.batcher):
            log.warning("Group membership lost; dropping %d buffered messages (not committed, "
                        "the new owner reads them again).", len(self.loop.batcher))
        self.loop.batcher.clear()


class StreamConsumer:
    """One consumer-group member: poll → process → batch → store (one insert) → commit.

    Used by `manage.py consume_stream` and by the API server's background thread. Call
    check() to verify Kafka and ClickHouse, run() to consume until request_stop() (safe from
    a signal handler: it only sets a flag), --exit-on-idle or --max-messages.
    """

    def __init__(
        self,
        *,
        bootstrap_servers,
        topics,
        group_id,
        dlq_topic,
        batch_size=10000,
        flush_interval=1.0,
        session_timeout_ms=10000,
        heartbeat_interval_ms=3000,
        max_poll_interval_ms=300000,
        bootstrap_timeout_ms=10000,
        insert_timeout=30,
        poison_limit=1000,
        retention_days=365,
        backoff_initial=0.5,
        backoff_max=30.0,
        using="clickhouse",
        on_stored=None,
    ):
        self.bootstrap_servers = bootstrap_servers
        self.topics = list(topics)
        self.group_id = group_id
        self.dlq_topic = dlq_topic
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.max_poll_interval_ms = max_poll_interval_ms
        self.bootstrap_timeout_ms = bootstrap_timeout_ms
        self.poison_limit = poison_limit
        self.retention_days = retention_days
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.using = using
        # Called with the batch after its rows are stored and before its offsets are
        # committed: instrumentation, and the crash point the SIGKILL test uses.
        self.on_stored = on_stored
        # One flush attempt is the id look-ups plus the insert, each bounded by the query
        # timeout. Retries happen between polls, so only one attempt must fit in the poll
        # interval, or the broker would evict the member mid-flush.
        statements = math.ceil(batch_size / LOOKUP_CHUNK) + 1
        if statements * insert_timeout * 1000 >= max_poll_interval_ms:
            raise ConsumerError(
                f"A flush of {batch_size} rows may take {statements} × {insert_timeout} s "
                f"(CLICKHOUSE_QUERY_TIMEOUT), more than KAFKA_MAX_POLL_INTERVAL_MS="
                f"{max_poll_interval_ms}: lower the batch size or the timeout, or raise the interval."
            )
        self.batcher = Batcher(size=batch_size, interval=flush_interval)
        self.stats = ConsumerStats(group_id)
        self.consumer = None
        self.producer = None
        self._stop = threading.Event()
        self._failures = 0
        self._retry_at = None
        self._streak = 0
        self._joined = False
        self._last_activity = time.monotonic()
        self._stored_next = {}  # (topic, partition) -> first offset not yet stored (for lag)
        self._uncommitted = {}  # stored, commit failed: retried with the next commit

    @classmethod
    def from_settings(cls, **overrides):
        """A loop configured from Django settings; keyword arguments override them."""
        options = {
            "bootstrap_servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "topics": settings.KAFKA_TOPICS,
            "group_id": settings.KAFKA_CONSUMER_GROUP,
            "dlq_topic": settings.KAFKA_DLQ_TOPIC,
            "batch_size": settings.KAFKA_BATCH_SIZE,
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

    # --- start and stop ---------------------------------------------------------------------

    def check(self):
        """Connect to ClickHouse and Kafka, or raise ConsumerError saying which is missing."""
        self._check_clickhouse()
        self._open_consumer()

    def _check_clickhouse(self):
        try:
            with connections[self.using].cursor() as cursor:
                cursor.execute(
                    "SELECT count() FROM system.tables WHERE database = currentDatabase() "
                    "AND name IN ('viewing_events', 'event_ids')"
                )
                (found,), = cursor.fetchall()
        except Exception as e:
            if "UNKNOWN_DATABASE" in str(e):  # migrate creates the database with the schema
                found = 0
            else:
                raise ConsumerError(f"ClickHouse is not available: {e}") from e
        if found != 2:
            raise ConsumerError("The ClickHouse schema is missing: run `python manage.py migrate` first.")

    def _open_consumer(self):
        if self.consumer is not None:
            return
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                group_id=self.group_id,
                # Offsets are committed by hand after the insert; a new group reads everything.
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=self.session_timeout_ms,
                heartbeat_interval_ms=self.heartbeat_interval_ms,
                max_poll_interval_ms=self.max_poll_interval_ms,
                max_poll_records=self.batcher.size,
                max_partition_fetch_bytes=FETCH_PARTITION_BYTES,
                request_timeout_ms=max(30000, self.session_timeout_ms + 5000),
                # Fail the start-up check in seconds, not kafka-python's default 30 s.
                bootstrap_timeout_ms=self.bootstrap_timeout_ms,
            )
            missing = sorted(set(self.topics) - consumer.topics())
        except kafka_errors.KafkaError as e:
            raise ConsumerError(f"Kafka is not reachable at {self.bootstrap_servers}: {e}") from e
        if missing:
            log.warning("Topics %s do not exist yet on %s; they are read once they are created.",
                        ", ".join(missing), self.bootstrap_servers)
        consumer.subscribe(self.topics, listener=_Listener(self))
        self.consumer = consumer

    def request_stop(self):
        """Ask the loop to flush, commit, leave the group and return. Safe in a signal handler."""
        self._stop.set()

    @property
    def stopping(self):
        return self._stop.is_set()

    # --- the loop ---------------------------------------------------------------------------

    def run(self, *, exit_on_idle=None, max_messages=None):
        """Consume until stopped; returns the stats snapshot. Raises ConsumerError when Kafka
        or ClickHouse is missing at start, or on a flood of poison messages."""
        if self.consumer is None:
            self.check()
        _loops.add(self)
        self.stats.state = "running"
        self._last_activity = time.monotonic()
        log.info("Consuming %s as group %s from %s (batch %d rows or %.1f s).",
                 ", ".join(self.topics), self.group_id, self.bootstrap_servers,
                 self.batcher.size, self.batcher.interval)
        try:
            while not self._stop.is_set():
                if self._retry_at is not None:
                    if time.monotonic() >= self._retry_at:
                        self._flush()
                elif self.batcher.due():
                    self._flush()
                if max_messages is not None and self.stats.consumed >= max_messages:
                    break
                if exit_on_idle is not None and self._idle_for() >= self._idle_limit(exit_on_idle):
                    log.info("Nothing new for %.1f s: stopping.", exit_on_idle)
                    break
                self._pause_when_full()
                limit = self.batcher.room() or 1
                if max_messages is not None:
                    limit = max(1, min(limit, max_messages - self.stats.consumed))
                records = self.consumer.poll(timeout_ms=self._poll_timeout_ms(), max_records=limit)
                if records:
                    self._process(records)
            self._shutdown()
        except BaseException:
            self.stats.state = "failed"
            self._close(flush=False)
            raise
        finally:
            _loops.discard(self)
        return self.stats.snapshot()

    def _idle_for(self):
        if len(self.batcher):
            return 0.0  # not idle until everything is stored and committed
        return time.monotonic() - self._last_activity

    def _idle_limit(self, exit_on_idle):
        # Joining a group takes a while (Tansu: session_timeout/2; Kafka: the initial
        # rebalance delay), so the idle clock gets that much more before the first assignment.
        return exit_on_idle if self._joined else exit_on_idle + self.session_timeout_ms / 1000

    def _poll_timeout_ms(self):
        waits = [0.5]
        if self._retry_at is not None:
            waits.append(self._retry_at - time.monotonic())
        elif (left := self.batcher.time_left()) is not None:
            waits.append(left)
        return max(0, int(min(waits) * 1000))

    def _pause_when_full(self):
        """Bounded memory: while a full batch waits to be stored, stop fetching (poll still
        runs, so the member stays in the group) and resume once it is stored."""
        assignment = self.consumer.assignment()
        paused = self.consumer.paused()
        if self.batcher.full:
            if assignment - paused:
                self.consumer.pause(*(assignment - paused))
                if not self.stats.paused:
                    log.info("Buffer full (%d messages not stored yet): fetching paused.", len(self.batcher))
                self.stats.paused = True
        elif paused:
            self.consumer.resume(*paused)
            self.stats.paused = False
            log.info("Fetching resumed.")

    def _process(self, records):
        now = datetime.now(UTC)
        retention = self.retention_days
        batcher = self.batcher
        count = 0
        for tp, messages in records.items():
            # The first offset this run sees of a partition is where its unstored part begins
            # (lag counts from there until something is stored).
            self._stored_next.setdefault((tp.topic, tp.partition), messages[0].offset)
            for m in messages:
                count += 1
                try:
                    row = process_message(m.value, topic=m.topic, partition=m.partition, offset=m.offset,
                                          timestamp_ms=m.timestamp, now=now, retention_days=retention)
                except MessageInvalid as e:
                    batcher.add_dead_letter(DeadLetter(m.topic, m.partition, m.offset, m.timestamp,
                                                       m.key, m.value, e.errors))
                    self._streak += 1
                    if self._streak >= self.poison_limit:
                        break
                else:
                    batcher.add(row, topic=m.topic, partition=m.partition, offset=m.offset)
                    self._streak = 0
            if self._streak >= self.poison_limit:
                break
        self.stats.consumed += count
        self.stats.buffered = len(batcher)
        self._last_activity = time.monotonic()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("Read %d messages; %d buffered, %d consumed in all.", count, len(batcher), self.stats.consumed)
        if self._streak >= self.poison_limit:
            # The run up to the limit is dead-lettered and committed; what follows it stays
            # in the topic, uncommitted (the consumer is closed without committing more).
            self._flush()
            raise PoisonFlood(
                f"The last {self._streak} messages were all invalid (limit KAFKA_POISON_LIMIT="
                f"{self.poison_limit}): the producer looks misconfigured. They are in {self.dlq_topic}; "
                f"stopping instead of dead-lettering the whole topic. Fix the producer and restart."
            )

    # --- storing and committing -------------------------------------------------------------

    def _store(self, batch):
        """Dead letters, then rows (one insert); raises if either fails."""
        self._send_dead_letters(batch.dead_letters)
        new = events_store(events=batch.rows, path="kafka", using=self.using) if batch.rows else 0
        if self.on_stored is not None:
            self.on_stored(batch)
        return new

    def _flush(self):
        """Store the batch and commit its offsets; on failure keep it and schedule a retry."""
        batch = self.batcher.batch
        if not len(batch):
            self._retry_at = None
            return True
        started = time.monotonic()
        try:
            new = self._store(batch)
        except Exception as e:
            self._failures += 1
            delay = min(self.backoff_max, self.backoff_initial * 2 ** (self._failures - 1))
            self._retry_at = time.monotonic() + delay
            self.stats.failed_flushes += 1
            self.stats.last_error = _describe(e)
            self.stats.state = "retrying"
            self.stats.lag = self._lag()
            log.warning("Storing %d messages failed (attempt %d): %s. Offsets not committed; "
                        "the batch is kept and retried in %.1f s.",
                        len(batch), self._failures, self.stats.last_error, delay)
            return False
        seconds = time.monotonic() - started
        self.batcher.take()
        self._stored_next.update(batch.offsets)
        if self._failures:
            log.info("Storing works again after %d failed attempts.", self._failures)
        self._failures = 0
        self._retry_at = None
        self.stats.state = "running"
        self._commit(batch.offsets)
        self._account(batch, new, seconds)
        return True

    def _account(self, batch, new, seconds):
        stats = self.stats
        stats.flushes += 1
        stats.stored += new
        stats.duplicates += len(batch.rows) - new
        stats.dead_lettered += len(batch.dead_letters)
        stats.buffered = len(self.batcher)
        stats.lag = self._lag()
        stats.last_flush = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "rows": len(batch.rows),
            "stored": new,
            "dead_lettered": len(batch.dead_letters),
            "seconds": round(seconds, 3),
        }
        total_lag = sum(stats.lag.values())
        log.info("Flushed %d messages: %d stored, %d duplicates, %d dead-lettered in %.3f s; lag %d.",
                 len(batch), new, len(batch.rows) - new, len(batch.dead_letters), seconds, total_lag,
                 extra={"rows": len(batch.rows), "stored": new, "duplicates": len(batch.rows) - new,
                        "dead_lettered": len(batch.dead_letters), "seconds": round(seconds, 3),
                        "lag": total_lag})
        if batch.dead_letters:
            metrics.DLQ_MESSAGES.labels(self.dlq_topic).inc(len(batch.dead_letters))
        for tp in self.consumer.assignment() if self.consumer is not None else ():
            lag = stats.lag.get(_tp_name(tp.topic, tp.partition))
            if lag is not None:
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)

    def _commit_map(self, offsets):
        return {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}

    def _committed_ok(self, offsets):
        for key in offsets:
            self._uncommitted.pop(key, None)

    def _commit(self, offsets):
        """Commit after the rows are stored. A failed commit is logged, not fatal: the rows
        are stored, so a re-delivery of them is skipped by id; the next commit retries."""
        offsets = {**self._uncommitted, **offsets}
        try:
            self.consumer.commit(self._commit_map(offsets))
        except kafka_errors.KafkaError as e:
            self._uncommitted = offsets
            log.warning("Committing offsets failed: %s; retried with the next batch (re-delivered "
                        "rows are skipped as duplicates).", e)
            return False
        self._committed_ok(offsets)
        return True

    def _store_for_rebalance(self):
        """From the rebalance listener: store the batch once (no waiting for retries while
        the group rebalances); returns the offsets to commit, or None."""
        batch = self.batcher.batch
        offsets = dict(self._uncommitted)
        if len(batch):
            started = time.monotonic()
            try:
                new = self._store(batch)
            except Exception as e:
                # Not committed, so whoever owns the partitions next reads them again.
                log.warning("Storing %d messages before a rebalance failed: %s; dropped from the "
                            "buffer, they are read again after the rebalance.", len(batch), _describe(e))
                self.batcher.clear()
                self._retry_at = None
                return offsets or None
            self.batcher.take()
            self._stored_next.update(batch.offsets)
            self._failures = 0
            self._retry_at = None
            self._account(batch, new, time.monotonic() - started)
            offsets.update(batch.offsets)
        return offsets or None

    def _revoked(self):
        # A rebalance is under way: not idle, and rejoining may take as long as a first join.
        self._joined = False
        self._last_activity = time.monotonic()

    def _assigned(self, assigned):
        self._joined = True
        self._last_activity = time.monotonic()
        keep = {(tp.topic, tp.partition) for tp in assigned}
        self._stored_next = {k: v for k, v in self._stored_next.items() if k in keep}
        self.stats.assignment = sorted(_tp_name(tp.topic, tp.partition) for tp in assigned)
        self.stats.paused = False
        log.info("Assigned partitions: %s.", ", ".join(self.stats.assignment) or "none")

    def _lag(self):
        """Messages per partition not yet stored: the high watermark of the last fetch minus
        the next offset to store (partitions this run has not stored anything from: skipped)."""
        lag = {}
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            done = self._stored_next.get((tp.topic, tp.partition))
            if high is not None and done is not None:
                lag[_tp_name(tp.topic, tp.partition)] = max(0, high - done)
        return lag

    def _send_dead_letters(self, letters):
        """Send the not-yet-acknowledged dead letters and wait for the broker's ack. The value
        is the original bytes; the error and source coordinates travel in headers."""
        pending = [letter for letter in letters if not letter.sent]
        if not pending:
            return
        if self.producer is None:
            self.producer = KafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all",
                                          linger_ms=5, max_block_ms=10000)
        futures = []
        for letter in pending:
            headers = [
                ("dlq.error", json.dumps(letter.error, ensure_ascii=False).encode()),
                ("dlq.topic", letter.topic.encode()),
                ("dlq.partition", str(letter.partition).encode()),
                ("dlq.offset", str(letter.offset).encode()),
                ("dlq.timestamp", str(letter.timestamp_ms).encode()),
            ]
            futures.append((letter, self.producer.send(self.dlq_topic, key=letter.key, value=letter.value,
                                                       headers=headers)))
        self.producer.flush(timeout=10)
        failed = None
        for letter, future in futures:
            if future.is_done and future.succeeded():
                letter.sent = True
            else:
                failed = future.exception or "no acknowledgement within 10 s"
        if failed is not None:
            raise ConsumerError(f"Dead-letter topic {self.dlq_topic} did not accept every message: {failed}")

    # --- shutdown ---------------------------------------------------------------------------

    def _shutdown(self):
        """Flush what is buffered (retrying a little while ClickHouse is away), commit, leave."""
        deadline = time.monotonic() + max(10.0, self.backoff_max)
        while len(self.batcher) and not self._flush() and self._retry_at <= deadline:
            # Stopping: no more polls, so a plain wait; bounded by the deadline.
            time.sleep(max(0.0, self._retry_at - time.monotonic()))
        leftover = len(self.batcher)
        self._close(flush=False)
        if leftover:
            self.stats.state = "failed"
            raise ConsumerError(
                f"Stopped with {leftover} messages not stored (ClickHouse unavailable: "
                f"{self.stats.last_error}). Their offsets are not committed: they are read again "
                f"on the next start."
            )
        self.stats.state = "stopped"
        log.info("Stopped: %d consumed, %d stored, %d duplicates, %d dead-lettered.", self.stats.consumed,
                 self.stats.stored, self.stats.duplicates, self.stats.dead_lettered)

    def _close(self, *, flush):
        if not flush:
            # close() calls the listener's on_partitions_revoked: nothing left to store there.
            self.batcher.clear()
        if self.consumer is not None:
            try:
                # autocommit=False: only offsets of stored rows are ever committed.
                self.consumer.close(autocommit=False)
            except Exception as e:
                log.warning("Closing the Kafka consumer failed: %s", e)
            self.consumer = None
        if self.producer is not None:
            try:
                self.producer.close(timeout=10)
            except Exception as e:
                log.warning("Closing the dead-letter producer failed: %s", e)
            self.producer = None
