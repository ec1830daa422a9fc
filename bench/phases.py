"""Benchmark phases that need a process of their own: the ones that open an embedded data
directory (one process at a time may) and the Kafka producer and bare reader.

Run by the orchestrator as `python -m bench.phases MODE` with a JSON spec on stdin; prints a
JSON result on stdout.
"""

import json
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

from analytics_site.chdb_backend.transport import EmbeddedClient
from viewing import ddl, queries

from . import sql as bench_sql
from .load import event_json, generated
from .stats import summary

# What the service sends with every query (analytics_site/settings.py).
QUERY_SETTINGS = {"async_insert": 0, "max_query_size": 16 * 1024 * 1024, "max_execution_time": 60}
TABLES = ddl.DATA_TABLES


def engine_client(path):
    return EmbeddedClient(path=path, database="analytics", settings=QUERY_SETTINGS)


def mode_floor(spec):
    """The engine floor: each round's rows in one Native INSERT through clickhouse-driver,
    straight into the engine (no HTTP, no validation, no de-duplication look-up). The rows are
    the tuples the service builds (services._insert_values: times as epoch seconds, which the
    driver encodes ~3.5 µs an event faster than datetime objects), so the floor holds only
    work the service cannot skip."""
    from viewing.services import _insert_values

    client = engine_client(spec["dir"])
    client.execute("SELECT 1")
    rounds = []
    created_at = int(time.time())
    chunk = spec.get("chunk")
    for data in spec["rounds"]:
        rows = [_insert_values(e, created_at) for e in generated(data)]
        t0 = time.perf_counter()
        client.execute(queries.INSERT_EVENTS, rows)
        seconds = time.perf_counter() - t0
        result = {"events": len(rows), "seconds": seconds, "events_per_s": len(rows) / seconds}
        if chunk:
            # The same rows again in inserts of `chunk` (what an HTTP batch or a consumer flush
            # holds): every insert pays a fixed cost (a part per table, the views' queries),
            # which a single large insert pays once. New ids, so nothing is de-duplicated.
            again = [(uuid.uuid4(), *row[1:]) for row in rows]
            t0 = time.perf_counter()
            for i in range(0, len(again), chunk):
                client.execute(queries.INSERT_EVENTS, again[i : i + chunk])
            seconds = time.perf_counter() - t0
            result.update(chunk=chunk, chunked_seconds=seconds, chunked_events_per_s=len(again) / seconds)
        rounds.append(result)
    return {"rounds": rounds}


def mode_parts(spec):
    """Parts each table has had created (system.part_log does not exist in chdb: the highest
    block number of a MergeTree table counts the parts inserts made), its active parts, rows."""
    client = engine_client(spec["dir"])
    out = {}
    for table in TABLES:
        (created, active, rows), = client.execute(
            "SELECT max(max_block_number), countIf(active), sumIf(rows, active) FROM system.parts "
            "WHERE database = 'analytics' AND table = %(t)s", {"t": table})
        out[table] = {"parts_created": created, "active_parts": active, "rows": rows}
    return out


def windows(days):
    """The parameters the selectors give the queries for a window of `days` (viewing/selectors.py)."""
    last_day = datetime.now(UTC).date()
    first_day = last_day - timedelta(days=days - 1)
    return {
        "first_day": first_day,
        "last_day": last_day,
        "start": datetime.combine(first_day, dtime()),
        "end": datetime.combine(last_day + timedelta(days=1), dtime()),
    }


TZ = "Asia/Kathmandu"
TZ_SUFFIX = "_kathmandu"


def tz_windows(days):
    """The window of `days` dates ending today in UTC, and the same dates (from/to) in TZ."""
    from viewing.windows import Window

    last = datetime.now(UTC).date()
    first = last - timedelta(days=days - 1)
    return Window(first, last, "UTC"), Window(first, last, TZ)


def _statements(sql):
    return sql if isinstance(sql, tuple) else (sql,)


def mode_sql(spec):
    """Each endpoint's SQL run directly on the engine (chdb, Native output, not decoded) and
    through clickhouse-driver (decoded to Python), and the raw-table version of each."""
    client = engine_client(spec["dir"])
    client.execute("SELECT 1")
    engine = client.connection._engine
    context = client.connection.context
    window = windows(spec["days"])
    users = [str(u) for (u,) in client.execute(
        "SELECT DISTINCT user_id FROM user_stats_daily ORDER BY cityHash64(user_id) LIMIT %(n)s",
        {"n": spec["users"]})]
    top_movie = client.execute(
        "SELECT movie_id FROM popular_content_daily GROUP BY movie_id ORDER BY sum(starts) DESC LIMIT 1")[0][0]
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    today = datetime.combine(window["last_day"], dtime())
    one_day = {"start": today, "end": today + timedelta(days=1)}
    utc, kathmandu = tz_windows(spec["days"])
    params = {
        "summary": lambda i: {"start": window["start"], "end": window["end"]},
        "retention": lambda i: {"start": window["start"], "end": window["end"], "movie_id": top_movie, "bucket": 60},
        "concurrency_hour_1d": lambda i: one_day,
        "concurrency_day_30d": lambda i: {"start": window["start"], "end": window["end"]},
        "realtime": lambda i: {"since": now - timedelta(seconds=300), "as_of": now},
    }
    cases = {name: (mv, raw) for name, (mv, raw) in bench_sql.ENDPOINT_SQL.items()}
    # The four analytics reads as the selectors build them, over the UTC window and over the same
    # number of dates in Asia/Kathmandu (+05:45: local midnights at 18:15 UTC); the engagement
    # endpoints over the Kathmandu window too.
    for suffix, tz_window in (("", utc), (TZ_SUFFIX, kathmandu)):
        for name, (mv, raw, of_request) in bench_sql.analytics_sql(tz_window, users).items():
            cases[name + suffix] = (mv, raw)
            params[name + suffix] = of_request
    k = {"start": kathmandu.start, "end": kathmandu.end}
    for name in ("summary", "concurrency_day_30d"):
        cases[name + TZ_SUFFIX] = bench_sql.ENDPOINT_SQL[name]
        params[name + TZ_SUFFIX] = lambda i, k=k: k
    cases["retention" + TZ_SUFFIX] = bench_sql.ENDPOINT_SQL["retention"]
    params["retention" + TZ_SUFFIX] = lambda i: {**k, "movie_id": top_movie, "bucket": 60}
    out = {"users": users, "top_movie": str(top_movie), "queries": {}}
    for name, (mv_sql, raw_sql) in cases.items():
        figures = {"engine": [], "driver": [], "raw_engine": []}
        for label, sql in (("engine", mv_sql), ("raw_engine", raw_sql)):
            # An endpoint of several statements is timed as their sum.
            texts = [[client.substitute_params(s, params[name](i), context) for s in _statements(sql)]
                     for i in range(spec["count"])]
            for text in texts[0]:
                engine.query(text, "Native").bytes()  # warm-up
            for _ in range(spec["rounds"]):
                latencies = []
                for statements in texts:
                    t0 = time.perf_counter()
                    for text in statements:
                        engine.query(text, "Native").bytes()
                    latencies.append((time.perf_counter() - t0) * 1000)
                figures[label].append(summary(latencies))
        for _ in range(spec["rounds"]):
            latencies = []
            for i in range(spec["count"]):
                p = params[name](i)
                t0 = time.perf_counter()
                for statement in _statements(mv_sql):
                    client.execute(statement, p)
                latencies.append((time.perf_counter() - t0) * 1000)
            figures["driver"].append(summary(latencies))
        out["queries"][name] = figures
    out["tables"] = {t: client.execute(f"SELECT count() FROM {t}")[0][0] for t in TABLES}
    return out


# --- Kafka --------------------------------------------------------------------------------------

def mode_produce(spec):
    """Fill the topics: generated events as the players send them (JSON, `action`, `event_id`)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=spec["bootstrap"], acks=1, linger_ms=20,
                             batch_size=512 * 1024, max_request_size=8 * 1024 * 1024)
    topic_of = {"start": spec["topics"][0], "progress": spec["topics"][1], "finish": spec["topics"][2]}
    action_of = {"start": "start", "progress": "progress", "finish": "stop"}
    sent = 0
    t0 = time.perf_counter()
    for data in spec["rounds"]:
        for e in generated(data):
            body = event_json(e)
            value = {
                "event_id": body["id"], "user_id": body["user_id"], "movie_id": body["movie_id"],
                "action": action_of[e["event_type"]], "timestamp": body["event_time"],
                "position_seconds": body["position_seconds"], "session_id": body["session_id"],
                "metadata": body["metadata"],
            }
            producer.send(topic_of[e["event_type"]], json.dumps(value, separators=(",", ":")).encode())
            sent += 1
    producer.flush(timeout=120)
    producer.close(timeout=30)
    return {"sent": sent, "seconds": time.perf_counter() - t0}


def mode_bare_read(spec):
    """The consumer's ceiling: a kafka-python loop in a new group that only reads the messages
    (the same consumer settings the service's loop uses, no parsing, no storing). Timed from
    the partition assignment to the last message, as the end-to-end run is."""
    from kafka import KafkaConsumer
    from kafka.consumer.subscription_state import ConsumerRebalanceListener

    assigned = []

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            pass

        def on_partitions_assigned(self, partitions):
            assigned.append(time.perf_counter())

    from viewing.kafka.config import ConsumerConfig

    # The service's consumer options (batch size, fetch sizes, session) with their defaults,
    # as consume_stream runs them in the end-to-end rounds.
    config = ConsumerConfig(bootstrap_servers=spec["bootstrap"], topics=spec["topics"], group_id=spec["group"],
                            dlq_topic="unused")
    consumer = KafkaConsumer(**config.consumer_options())
    consumer.subscribe(spec["topics"], listener=Listener())
    count, last = 0, None
    deadline = time.monotonic() + spec.get("timeout", 300)
    while count < spec["count"] and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500, max_records=config.batch_size).values():
            count += len(records)
            last = time.perf_counter()
    consumer.close(autocommit=False)
    started = assigned[0] if assigned else None
    seconds = (last - started) if (last and started) else None
    return {"messages": count, "seconds": seconds, "events_per_s": count / seconds if seconds else None}


MODES = {"floor": mode_floor, "parts": mode_parts, "sql": mode_sql, "produce": mode_produce,
         "bare_read": mode_bare_read}


def _default(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def main():
    mode = sys.argv[1]
    spec = json.load(sys.stdin)
    json.dump(MODES[mode](spec), sys.stdout, default=_default)


if __name__ == "__main__":
    main()
