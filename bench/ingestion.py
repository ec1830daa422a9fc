"""The ingestion parts of the benchmark run: the engine floor, the HTTP batch endpoint, single
events (closed and open loop), and Kafka (bare read loop vs consume_stream)."""

import os
import re
import urllib.request
import uuid
from datetime import datetime

from . import procs
from .procs import data as _data
from .procs import log
from .stats import median, median_of_rounds

TOPICS = ["bench.stream.start", "bench.stream.progress", "bench.stream.stop"]
BATCH = 10_000  # events a batch request holds (the endpoint's maximum)
# Batch clients: one connection sending one request after the other, and a producer with a
# pool of 4 connections, each sending its next request as soon as its previous one is answered.
BATCH_CONCURRENCY = [1, 4]
# Open loop: requests wait together for a shared insert (viewing/ingest_buffer.py), each on a
# thread of its own, so the server needs about rate × latency threads (1,000/s × 0.4 s; with
# 256 a loaded server queued requests for a thread at 1,000/s).
OPEN_LOOP_THREADS = 512
OPEN_LOOP_P99_MS = 500
# The parts' datasets stay until the run ends (bench/run.py removes its whole directory), not
# removed one after the other: on ext4 without a journal a file created within ~30 s of many
# deletions makes the kernel scan the recently deleted inodes, so the next part's inserts would
# pay for the last one's cleanup (measured: kernel CPU per 200-event insert 47 -> 74 ms right
# after deleting 30,000 files; docs/operations.md, "The data directory's file system").


def bench_ingest(root, cfg, results):
    rounds = cfg["rounds"]
    batch_rounds = [_data(100 + i, cfg["ingest_events"]) for i in range(rounds)]

    log(f"ingest: engine floor, {rounds} × {cfg['ingest_events']:,} rows in one Native insert each")
    floor_dir = procs.fresh_dataset(root, "ingest-floor")
    floor = procs.run_json(["bench.phases", "floor"], {"dir": os.path.join(floor_dir, "clickhouse"),
                                                      "rounds": batch_rounds, "chunk": BATCH},
                           env=procs.dataset_env(floor_dir))

    log(f"ingest: HTTP batch endpoint, 10,000 events a request, one client process with "
        f"{' and '.join(map(str, BATCH_CONCURRENCY))} connections (rounds interleaved)")
    http_dir = procs.fresh_dataset(root, "ingest-http")
    headers = procs.api_key(http_dir)
    with procs.Server(http_dir) as server:
        batch = procs.run_json(["bench.load"], {"mode": "batch", "port": server.port, "batch": BATCH,
                                                "rounds": batch_rounds, "headers": headers,
                                                "concurrency": BATCH_CONCURRENCY,
                                                "server_pids": server.worker_pids()})
    batch_rss = server.peak_rss_mib

    log(f"ingest: single events, 32 clients, {rounds} × {cfg['single_seconds']} s")
    single_dir = procs.fresh_dataset(root, "ingest-single")
    headers = procs.api_key(single_dir)
    # More events than a round can send; each round its own, so every one is new.
    single_rounds = [dict(_data(200 + i, 20_000), seconds=cfg["single_seconds"]) for i in range(rounds)]
    with procs.Server(single_dir) as server:
        single = procs.run_json(["bench.load"], {"mode": "single", "port": server.port, "concurrency": 32,
                                                 "rounds": single_rounds, "headers": headers})
    single_rss = server.peak_rss_mib
    parts = procs.run_json(["bench.phases", "parts"], {"dir": os.path.join(single_dir, "clickhouse")},
                           env=procs.dataset_env(single_dir))

    open_loop = bench_open_loop(root, cfg)

    stored = parts["viewing_events"]["rows"]
    created = parts["viewing_events"]["parts_created"]
    all_tables = sum(t["parts_created"] or 0 for name, t in parts.items() if not name.startswith("_"))
    floor_eps = median_of_rounds(floor["rounds"], "events_per_s")
    chunked_eps = median_of_rounds(floor["rounds"], "chunked_events_per_s")
    batch_eps = median_of_rounds(batch["rounds"], "events_per_s")
    pooled = batch["by_concurrency"][str(BATCH_CONCURRENCY[-1])]
    pooled_eps = median_of_rounds(pooled, "events_per_s")
    results["ingest"] = {
        "floor": floor["rounds"],
        "batch": batch["rounds"],
        "single": single["rounds"],
        "parts": parts,
        "open_loop": open_loop,
        "summary": {
            "floor_events_per_s": floor_eps,
            "floor_chunked_events_per_s": chunked_eps,
            "floor_chunked_vs_floor": chunked_eps / floor_eps if chunked_eps else None,
            "batch_events_per_s": batch_eps,
            "batch_vs_floor": batch_eps / floor_eps if batch_eps else None,
            "batch_vs_chunked_floor": batch_eps / chunked_eps if batch_eps and chunked_eps else None,
            "batch_errors": sum(r["errors"] for r in batch["rounds"]),
            "batch_server_cpu_us_per_event": median_of_rounds(batch["rounds"], "server_cpu_us_per_event"),
            "batch_pooled_connections": BATCH_CONCURRENCY[-1],
            "batch_pooled_events_per_s": pooled_eps,
            "batch_pooled_vs_floor": pooled_eps / floor_eps if pooled_eps else None,
            "batch_pooled_vs_chunked_floor": pooled_eps / chunked_eps if pooled_eps and chunked_eps else None,
            "batch_pooled_errors": sum(r["errors"] for r in pooled),
            "batch_pooled_server_cpu_us_per_event": median_of_rounds(pooled, "server_cpu_us_per_event"),
            "single_events_per_s": median_of_rounds(single["rounds"], "events_per_s"),
            "single_p50_ms": median_of_rounds(single["rounds"], "p50_ms"),
            "single_p99_ms": median_of_rounds(single["rounds"], "p99_ms"),
            "single_errors": sum(r["errors"] for r in single["rounds"]),
            "single_events_stored": stored,
            "single_parts_per_1000": 1000 * created / stored if stored else None,
            "single_parts_per_1000_all_tables": 1000 * all_tables / stored if stored else None,
            "server_peak_rss_mib_batch": batch_rss,
            "server_peak_rss_mib_single": single_rss,
        },
    }


def bench_open_loop(root, cfg):
    """Single events at fixed arrival rates (bench.openloop), lowest first, on one server with
    OPEN_LOOP_THREADS threads. Every rate runs (on a shared machine one rate can miss by a
    hiccup while the next meets); the capacity is the highest rate that met the target (p99
    and no errors)."""
    rates, seconds = cfg["open_loop_rates"], cfg["open_loop_seconds"]
    log(f"ingest: single events, open loop at {', '.join(map(str, rates))} events/s, {seconds} s each, "
        f"{OPEN_LOOP_THREADS} server threads")
    var_dir = procs.fresh_dataset(root, "ingest-open-loop")
    headers = procs.api_key(var_dir)
    rounds = []
    with procs.Server(var_dir, threads=OPEN_LOOP_THREADS) as server:
        # Warm-up, not counted: a server that has just started still creates its threads and
        # connections and makes its first parts (p99 over 1 s at 250/s in its first seconds
        # here, 0.4 s at 500/s right after).
        warmup = procs.run_json(["bench.openloop"], {"port": server.port, "headers": headers, "rates": [100],
                                                     "seconds": 2, "data": [_live(399, 201)]})
        # Its inserts (one raw-table part each) are left out of the parts per 1,000 events.
        warmup_inserts = _inserts_so_far(server.port, headers)
        warmup_events = warmup["rounds"][0]["statuses"].get("201", 0)
        for i, rate in enumerate(rates):
            data = _live(400 + i, int(rate * seconds) + 1)
            load, cpu = os.getloadavg()[0], server.worker_cpu_seconds()
            result = procs.run_json(["bench.openloop"], {"port": server.port, "headers": headers, "rates": [rate],
                                                         "seconds": seconds, "data": [data]})["rounds"][0]
            # The server's CPU (Python and engine threads, merges included) per event sent, beside
            # the load generator's own (bench.openloop): both share the machine's cores.
            result["server_cpu_ms_per_event"] = 1000 * (server.worker_cpu_seconds() - cpu) / result["sent"]
            result["load_average_before"] = load
            result["met"] = result["errors"] == 0 and result["p99_ms"] is not None and \
                result["p99_ms"] <= OPEN_LOOP_P99_MS
            rounds.append(result)
    peak_rss = server.peak_rss_mib
    parts = procs.run_json(["bench.phases", "parts"], {"dir": os.path.join(var_dir, "clickhouse")},
                           env=procs.dataset_env(var_dir))
    stored = parts["viewing_events"]["rows"] - warmup_events
    created = parts["viewing_events"]["parts_created"] - warmup_inserts
    met = [r["rate"] for r in rounds if r["met"]]
    return {
        "threads": OPEN_LOOP_THREADS, "seconds": seconds, "rounds": rounds, "parts": parts,
        "capacity_events_per_s": max(met) if met else None,
        "parts_per_1000": 1000 * created / stored if stored else None,
        "events_stored": stored, "server_peak_rss_mib": peak_rss,
    }


def _live(seed, events):
    """Generator parameters of live players' single events: many players (the generator's
    users), each event its own (new id), of the last 10 minutes, as players report what
    happens. Not the 30 days of the other parts: the raw table is partitioned by month, so an
    insert holding events of two months makes two parts, and with 30 days nearly every insert
    did, on most days of a month (11.0 parts per 1,000 events on 2 December, 9.4 on the 1st,
    when fewer inserts held an event of the new month). (Not the generator's `days=1`: just
    after midnight UTC it finds almost no time before now and takes minutes to make them.)"""
    return dict(_data(seed, events), users=50_000, live_minutes=10)


def _inserts_so_far(port, headers):
    """The inserts of single events the server has made (its /metrics)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    found = re.search(r'^analytics_insert_batch_rows_count\{path="http"\} (\S+)$', text, re.M)
    return int(float(found.group(1))) if found else 0


LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
FLUSHED = re.compile(r"Flushed (\d+) messages: (\d+) stored")


def _consume(root, name, bootstrap, count, group):
    """consume_stream in its own process on a fresh dataset, until `count` messages: seconds
    from the partition assignment to the last flush (its own log lines), stored, peak RSS."""
    var_dir = procs.fresh_dataset(root, name)
    env = procs.dataset_env(var_dir, KAFKA_BOOTSTRAP_SERVERS=bootstrap, KAFKA_TOPICS=",".join(TOPICS),
                            KAFKA_CONSUMER_GROUP=group, KAFKA_DLQ_TOPIC="bench.stream.dlq", LOG_FORMAT="plain",
                            LOG_LEVEL="INFO")
    # The service's batch size (KAFKA_BATCH_SIZE, KAFKA_BATCH_BYTES): what an operator runs.
    seconds, rss, text = procs.manage(["consume_stream", "--max-messages", str(count)], env=env, timeout=600)
    assigned = last = None
    stored = 0
    for line in text.splitlines():
        m = LOG_TIME.match(line)
        if not m:
            continue
        at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
        if "Assigned partitions" in line and assigned is None:
            assigned = at
        flushed = FLUSHED.search(line)
        if flushed:
            last = at
            stored += int(flushed.group(2))
    elapsed = (last - assigned).total_seconds() if assigned and last else None
    return {"messages": count, "stored": stored, "seconds": elapsed, "process_seconds": seconds,
            "events_per_s": stored / elapsed if elapsed else None, "peak_rss_mib": rss}


def bench_kafka(root, cfg, results):
    rounds = cfg["rounds"]
    small, large = cfg["kafka_messages"]
    with procs.Tansu() as broker:
        broker.create_topics(TOPICS + ["bench.stream.dlq"])
        log(f"kafka: producing {large:,} messages to Tansu")
        produced = procs.run_json(["bench.phases", "produce"], {"bootstrap": broker.bootstrap, "topics": TOPICS,
                                                                "rounds": [_data(300, large)]})
        log(f"kafka: consume_stream on {small:,} messages (memory at a smaller topic)")
        small_run = _consume(root, "kafka-small", broker.bootstrap, small, f"bench-small-{uuid.uuid4().hex[:8]}")
        e2e, bare = [], []
        for i in range(rounds):
            log(f"kafka: round {i + 1}/{rounds}: bare read loop, then consume_stream, {large:,} messages")
            bare.append(procs.run_json(["bench.phases", "bare_read"], {
                "bootstrap": broker.bootstrap, "topics": TOPICS, "count": large,
                "group": f"bench-bare-{uuid.uuid4().hex[:8]}"}))
            e2e.append(_consume(root, f"kafka-e2e-{i}", broker.bootstrap, large, f"bench-e2e-{uuid.uuid4().hex[:8]}"))
        broker_rss = broker.peak_rss_mib()
    bare_eps = median_of_rounds(bare, "events_per_s")
    e2e_eps = median_of_rounds(e2e, "events_per_s")
    results["kafka"] = {
        "produced": produced,
        "bare": bare,
        "e2e": e2e,
        "small": small_run,
        "summary": {
            "messages": large,
            "bare_events_per_s": bare_eps,
            "e2e_events_per_s": e2e_eps,
            "e2e_vs_bare": e2e_eps / bare_eps if bare_eps else None,
            "consumer_peak_rss_mib_small": small_run["peak_rss_mib"],
            "consumer_peak_rss_mib_large": median([r["peak_rss_mib"] for r in e2e]),
            "small_messages": small,
            "broker_peak_rss_mib": broker_rss,
        },
    }
