"""`python -m bench.ingest_micro`: the per-event cost of ingestion's two Python stages, without
a broker or a server: validation (viewing.kafka.processor.process_message on pre-built Kafka
records, and viewing.events.normalize_event on HTTP batch items) and storage
(viewing.services.events_store, 10,000-row batches into a fresh embedded engine), beside the
engine floor (the same rows in one Native insert, no look-up).

Prints µs/event (median of --rounds) and, with --json, the figures as JSON. Each run uses its
own temporary data directory. Used to measure the speed-ups in docs/kafka.md, Throughput.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import namedtuple
from datetime import UTC, datetime

Record = namedtuple("Record", "topic partition offset timestamp key value")
TOPICS = {"start": "stream.start", "progress": "stream.progress", "finish": "stream.stop"}
ACTIONS = {"start": "start", "progress": "progress", "finish": "stop"}


def _setup(data_dir):
    os.environ.update(ANALYTICS_VAR_DIR=data_dir, CLICKHOUSE_DATA_DIR=os.path.join(data_dir, "clickhouse"),
                      ENABLE_KAFKA="false", DJANGO_DEBUG="true")
    os.environ.pop("CLICKHOUSE_HOST", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _inputs(count, seed):
    """`count` generated events as Kafka records (the player's JSON, as bench.phases produces
    it) and as HTTP batch items."""
    from bench.load import event_json
    from viewing.generator import event_batches

    records, items = [], []
    offsets = {}
    for batch in event_batches(events=count, days=30, users=5000, movies=500, seed=seed):
        for e in batch:
            body = event_json(e)
            items.append(body)
            value = {"event_id": body["id"], "user_id": body["user_id"], "movie_id": body["movie_id"],
                     "action": ACTIONS[e["event_type"]], "timestamp": body["event_time"],
                     "position_seconds": body["position_seconds"], "session_id": body["session_id"],
                     "metadata": body["metadata"]}
            topic = TOPICS[e["event_type"]]
            offset = offsets[topic] = offsets.get(topic, -1) + 1
            records.append(Record(topic, 0, offset, int(time.time() * 1000), None,
                                  json.dumps(value, separators=(",", ":")).encode()))
    return records, items


def _validate_kafka(records, now):
    from viewing.kafka.processor import process_message

    rows = []
    t0 = time.perf_counter()
    for m in records:
        rows.append(process_message(m.value, topic=m.topic, partition=m.partition, offset=m.offset,
                                    timestamp_ms=m.timestamp, now=now, retention_days=365))
    return time.perf_counter() - t0, rows


def _validate_http(items, now):
    from viewing.events import normalize_event

    t0 = time.perf_counter()
    for item in items:
        normalize_event(item, now=now, retention_days=365, default_time=now)
    return time.perf_counter() - t0


def _truncate():
    from django.db import connections

    from viewing import ddl

    with connections["clickhouse"].cursor() as cursor:
        for table in ddl.DATA_TABLES:
            cursor.execute(f"TRUNCATE TABLE {table}")


def _store(rows, batch):
    from viewing.services import events_store

    _truncate()
    t0 = time.perf_counter()
    for i in range(0, len(rows), batch):
        events_store(events=rows[i : i + batch], path="kafka")
    return time.perf_counter() - t0


def _floor(rows, batch):
    """The same rows as tuples in one Native insert per batch: no look-up, no copies timed."""
    from django.db import connections

    from viewing import queries

    _truncate()
    from viewing.services import _insert_values

    created_at = int(time.time())
    tuples = [_insert_values(r, created_at) for r in rows]  # as the service builds them
    t0 = time.perf_counter()
    with connections["clickhouse"].cursor() as cursor:
        for i in range(0, len(tuples), batch):
            cursor.executemany(queries.INSERT_EVENTS, tuples[i : i + batch])
    return time.perf_counter() - t0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_micro", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=10_000, help="rows per events_store call")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-store", action="store_true", help="validation only (no engine)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="ingest-micro-") as tmp:
        _setup(tmp)
        records, items = _inputs(args.events, seed=7)
        now = datetime.now(UTC)
        figures = {"kafka_validate": [], "http_validate": [], "store": [], "floor": []}
        for _ in range(args.rounds):
            seconds, rows = _validate_kafka(records, now)
            figures["kafka_validate"].append(seconds)
            figures["http_validate"].append(_validate_http(items, now))
            if not args.skip_store:
                figures["store"].append(_store(rows, args.batch))
                figures["floor"].append(_floor(rows, args.batch))
        n = len(records)
        result = {k: statistics.median(v) * 1e6 / n for k, v in figures.items() if v}
        result["events"] = n
        result["rounds"] = args.rounds
        if args.json:
            print(json.dumps(result))
        else:
            print(f"{n:,} events, {args.rounds} rounds, medians; storage in batches of {args.batch:,}")
            labels = {"kafka_validate": "validate: Kafka process_message", "http_validate":
                      "validate: HTTP normalize_event", "store": "store: events_store (look-up + insert)",
                      "floor": "floor: Native insert only"}
            for key, label in labels.items():
                if key in result:
                    print(f"  {label:42} {result[key]:7.2f} µs/event  {1e6 / result[key]:>10,.0f} events/s")
            if "store" in result:
                total = result["kafka_validate"] + result["store"]
                print(f"  {'Kafka validate + store':42} {total:7.2f} µs/event  {1e6 / total:>10,.0f} events/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
