"""The benchmark run: phases in order, each in the processes it needs, then the table and
bench/results.json."""

import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime

from . import privacy, procs
from .report import table
from .stats import median, median_of_rounds

PARTS = {
    "ingest": "engine floor (one Native insert) vs the HTTP batch endpoint; single events under "
              "32 clients (events/s, p50/p99, parts per 1,000 events)",
    "kafka": "consume_stream end to end from a pre-filled Tansu topic vs a bare kafka-python read loop; "
             "consumer peak RSS at two topic sizes",
    "queries": "p50/p95 of every analytics endpoint over HTTP vs its SQL on the engine, and the raw-table "
               "SQL beside the materialized-view SQL, at 1M (and 10M) events",
    "mixed": "popular, trends, peak hours and user stats of random users at 8 and 32 clients "
             "(requests/s, p99, error rate), on the largest dataset",
    "admin": "Django admin changelist and exact-UUID user search, logged in, on the largest dataset",
    "privacy": "a whole-window export (CSV, Parquet: time, server RSS growth) and erasing users of ~1,000 "
               "events (p50), on the largest dataset, last (it erases)",
}

QUICK = {
    "sizes": [1_000_000],
    "rounds": 5,
    "ingest_events": 100_000,
    "single_seconds": 3,
    "kafka_messages": [20_000, 60_000],
    "query_count": 20,
    "raw_count": {1_000_000: 10},
    "http_count": 20,
    "mixed_seconds": 2,
    "admin_count": 5,
}
FULL = {
    "sizes": [1_000_000, 10_000_000],
    "rounds": 5,
    "ingest_events": 200_000,
    "single_seconds": 6,
    "kafka_messages": [50_000, 300_000],
    "query_count": 20,
    "raw_count": {1_000_000: 10, 10_000_000: 4},
    "http_count": 30,
    "mixed_seconds": 4,
    "admin_count": 5,
}
DATA = {"days": 30, "users": 20_000, "movies": 1_000}
DAYS = 30  # every query reads the whole generated window
TOPICS = ["bench.stream.start", "bench.stream.progress", "bench.stream.stop"]
ADMIN_USER, ADMIN_PASSWORD = "bench-admin", uuid.uuid4().hex


def log(message):
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def machine():
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    try:
        from importlib.metadata import version

        chdb_version = version("chdb-core")
    except Exception:
        chdb_version = None
    with open("/proc/meminfo") as f:
        memory_gib = int(f.readline().split()[1]) / 1024 / 1024
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_gib, 1),
        "engine": "embedded ClickHouse (chdb) under clickhouse-driver",
        "chdb_version": chdb_version,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def git_commit():
    def git(*args):
        return subprocess.run(["git", *args], cwd=procs.ROOT, capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--", "analytics_site", "viewing"))}


def _data(seed, events):
    return {"seed": seed, "events": events, **DATA}


# --- parts --------------------------------------------------------------------------------------

def bench_ingest(root, cfg, results):
    rounds = cfg["rounds"]
    batch_rounds = [_data(100 + i, cfg["ingest_events"]) for i in range(rounds)]

    log(f"ingest: engine floor, {rounds} × {cfg['ingest_events']:,} rows in one Native insert each")
    floor_dir = procs.fresh_dataset(root, "ingest-floor")
    floor = procs.run_json(["bench.phases", "floor"], {"dir": os.path.join(floor_dir, "clickhouse"),
                                                      "rounds": batch_rounds}, env=procs.dataset_env(floor_dir))
    shutil.rmtree(floor_dir, ignore_errors=True)

    log("ingest: HTTP batch endpoint, 10,000 events a request, one client process")
    http_dir = procs.fresh_dataset(root, "ingest-http")
    headers = procs.api_key(http_dir)
    with procs.Server(http_dir) as server:
        batch = procs.run_json(["bench.load"], {"mode": "batch", "port": server.port, "batch": 10_000,
                                                "rounds": batch_rounds, "headers": headers})
    batch_rss = server.peak_rss_mib
    shutil.rmtree(http_dir, ignore_errors=True)

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
    shutil.rmtree(single_dir, ignore_errors=True)

    stored = parts["viewing_events"]["rows"]
    created = parts["viewing_events"]["parts_created"]
    all_tables = sum(t["parts_created"] or 0 for name, t in parts.items() if not name.startswith("_"))
    floor_eps = median_of_rounds(floor["rounds"], "events_per_s")
    batch_eps = median_of_rounds(batch["rounds"], "events_per_s")
    results["ingest"] = {
        "floor": floor["rounds"],
        "batch": batch["rounds"],
        "single": single["rounds"],
        "parts": parts,
        "summary": {
            "floor_events_per_s": floor_eps,
            "batch_events_per_s": batch_eps,
            "batch_vs_floor": batch_eps / floor_eps if batch_eps else None,
            "batch_errors": sum(r["errors"] for r in batch["rounds"]),
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


LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
FLUSHED = re.compile(r"Flushed (\d+) messages: (\d+) stored")


def _consume(root, name, bootstrap, count, group):
    """consume_stream in its own process on a fresh dataset, until `count` messages: seconds
    from the partition assignment to the last flush (its own log lines), stored, peak RSS."""
    var_dir = procs.fresh_dataset(root, name)
    env = procs.dataset_env(var_dir, KAFKA_BOOTSTRAP_SERVERS=bootstrap, KAFKA_TOPICS=",".join(TOPICS),
                            KAFKA_CONSUMER_GROUP=group, KAFKA_DLQ_TOPIC="bench.stream.dlq", LOG_FORMAT="plain",
                            LOG_LEVEL="INFO")
    seconds, rss, text = procs.manage(["consume_stream", "--max-messages", str(count), "--batch-size", "10000"],
                                      env=env, timeout=600)
    shutil.rmtree(var_dir, ignore_errors=True)
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
            e2e.append(_consume(root, "kafka-e2e", broker.bootstrap, large, f"bench-e2e-{uuid.uuid4().hex[:8]}"))
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


def _endpoint_paths(users, days, top_movie):
    from .phases import TZ, TZ_SUFFIX, tz_windows

    _utc, tz = tz_windows(days)
    window = f"from={tz.first}&to={tz.last}&tz={TZ}"
    # The same endpoints over the same dates in Asia/Kathmandu, as a from/to window.
    in_tz = {
        "popular": [f"/api/v1/analytics/content/popular?{window}&limit=10"],
        "user_stats": [f"/api/v1/analytics/user/{u}/stats?{window}" for u in users],
        "trends": [f"/api/v1/analytics/trends?{window}"],
        "peak_hours": [f"/api/v1/analytics/peak-hours?{window}"],
        "summary": [f"/api/v1/analytics/summary?{window}"],
        "retention": [f"/api/v1/analytics/content/{top_movie}/retention?{window}"],
        "concurrency_day_30d": [f"/api/v1/analytics/concurrency?{window}&interval=day"],
    }
    return {**{name + TZ_SUFFIX: paths for name, paths in in_tz.items()}, **_utc_paths(users, days, top_movie)}


def _utc_paths(users, days, top_movie):
    return {
        "popular": [f"/api/v1/analytics/content/popular?days={days}&limit=10"],
        "user_stats": [f"/api/v1/analytics/user/{u}/stats?days={days}" for u in users],
        "trends": [f"/api/v1/analytics/trends?days={days}"],
        "peak_hours": [f"/api/v1/analytics/peak-hours?days={days}"],
        "summary": [f"/api/v1/analytics/summary?days={days}"],
        "retention": [f"/api/v1/analytics/content/{top_movie}/retention?days={days}"],
        "concurrency_hour_1d": ["/api/v1/analytics/concurrency?days=1&interval=hour"],
        "concurrency_day_30d": [f"/api/v1/analytics/concurrency?days={days}&interval=day"],
        "realtime": ["/api/v1/analytics/realtime?window=300"],
    }


def bench_queries(root, cfg, results, parts):
    rounds = cfg["rounds"]
    var_dir = procs.fresh_dataset(root, "queries")
    if "admin" in parts:
        create_admin(var_dir)
    headers = procs.api_key(var_dir)
    results.setdefault("queries", {})
    largest = cfg["sizes"][-1]
    for size in cfg["sizes"]:
        label = f"{size // 1_000_000}M"
        log(f"queries {label}: generate_events --events {size:,} (the same seed: earlier events are kept)")
        seconds, rss, _ = procs.manage(
            ["generate_events", "--events", str(size), "--days", str(DATA["days"]), "--users", str(DATA["users"]),
             "--movies", str(DATA["movies"]), "--seed", "1", "-v0"], env=procs.dataset_env(var_dir), timeout=1800)
        entry = results["queries"].setdefault(label, {})
        entry["generate"] = {"seconds": seconds, "peak_rss_mib": rss}

        log(f"queries {label}: each endpoint's SQL on the engine, MV and raw table")
        sql = procs.run_json(["bench.phases", "sql"], {
            "dir": os.path.join(var_dir, "clickhouse"), "days": DAYS, "users": 200, "rounds": rounds,
            "count": cfg["query_count"]}, env=procs.dataset_env(var_dir))
        users = sql.pop("users")
        entry["tables"] = sql["tables"]
        paths = _endpoint_paths(users, DAYS, sql.pop("top_movie"))
        if size == largest and "privacy" in parts:
            candidates = procs.run_json(["bench.privacy", "candidates"], {
                "dir": os.path.join(var_dir, "clickhouse"), "count": rounds, "target": 1000},
                env=procs.dataset_env(var_dir))["users"]

        with procs.Server(var_dir) as server:
            if "queries" in parts:
                log(f"queries {label}: each endpoint over HTTP, one client")
                http = procs.run_json(["bench.load"], {"mode": "get", "port": server.port, "rounds": rounds,
                                                       "headers": headers, "cases": {
                    name: {"paths": p, "concurrency": 1, "count": cfg["http_count"]} for name, p in paths.items()}})
                endpoints = {}
                for name, figures in sql["queries"].items():
                    engine_p50 = median_of_rounds(figures["engine"], "p50_ms")
                    http_p50 = median_of_rounds(http[name], "p50_ms")
                    raw_p50 = median_of_rounds(figures["raw_engine"], "p50_ms")
                    endpoints[name] = {
                        "http_p50_ms": http_p50,
                        "http_p95_ms": median_of_rounds(http[name], "p95_ms"),
                        "http_errors": sum(r["errors"] for r in http[name]),
                        "sql_engine_p50_ms": engine_p50,
                        "sql_engine_p95_ms": median_of_rounds(figures["engine"], "p95_ms"),
                        "sql_driver_p50_ms": median_of_rounds(figures["driver"], "p50_ms"),
                        "raw_engine_p50_ms": raw_p50,
                        "raw_engine_p95_ms": median_of_rounds(figures["raw_engine"], "p95_ms"),
                        "http_limit_ms": 1.5 * engine_p50 + 5,
                        "http_vs_sql": http_p50 / engine_p50,
                        "raw_vs_mv": raw_p50 / engine_p50,
                        "rounds": {"http": http[name], "sql": figures},
                    }
                entry["endpoints"] = endpoints
            if size == largest and "mixed" in parts:
                mixed_paths = [p for name in ("popular", "trends", "peak_hours") for p in paths[name]]
                # Every fourth request is user stats of a random user.
                mixed = []
                for i, user_path in enumerate(paths["user_stats"]):
                    mixed += [mixed_paths[i % 3], user_path]
                results["mixed"] = {"dataset": label}
                for concurrency in (8, 32):
                    log(f"mixed {label}: {concurrency} clients, {rounds} × {cfg['mixed_seconds']} s")
                    case = {"paths": mixed, "concurrency": concurrency, "seconds": cfg["mixed_seconds"]}
                    run = procs.run_json(["bench.load"], {"mode": "get", "port": server.port, "rounds": rounds,
                                                          "headers": headers, "cases": {"mixed": case}})
                    results["mixed"][str(concurrency)] = {
                        "requests_per_s": median_of_rounds(run["mixed"], "requests_per_s"),
                        "p50_ms": median_of_rounds(run["mixed"], "p50_ms"),
                        "p99_ms": median_of_rounds(run["mixed"], "p99_ms"),
                        "errors": sum(r["errors"] for r in run["mixed"]),
                        "requests": sum(r["n"] for r in run["mixed"]),
                        "rounds": run["mixed"],
                    }
            if size == largest and "admin" in parts:
                log(f"admin {label}: changelist and exact-UUID user search")
                admin = procs.run_json(["bench.load"], {
                    "mode": "admin", "port": server.port, "username": ADMIN_USER, "password": ADMIN_PASSWORD,
                    "rounds": rounds, "count": cfg["admin_count"], "cases": {
                        "changelist": ["/admin/viewing/viewingevent/"],
                        "search": [f"/admin/viewing/viewingevent/?q={u}" for u in users[:50]],
                    }})
                results["admin"] = {"dataset": label, **{
                    name: {"p50_ms": median_of_rounds(r, "p50_ms"), "p95_ms": median_of_rounds(r, "p95_ms"),
                           "errors": sum(x["errors"] for x in r), "rounds": r}
                    for name, r in admin.items() if not name.startswith("_")}}
            if size == largest and "privacy" in parts:
                results["privacy"] = {"dataset": label,
                                      **privacy.measure(server, var_dir, candidates, days=DAYS, log=log)}
        entry["server_peak_rss_mib"] = server.peak_rss_mib
    shutil.rmtree(var_dir, ignore_errors=True)
    sizes = [f"{s // 1_000_000}M" for s in cfg["sizes"]]
    if len(sizes) > 1 and "queries" in parts:
        small, big = results["queries"][sizes[0]]["endpoints"], results["queries"][sizes[-1]]["endpoints"]
        results["growth"] = {"from": sizes[0], "to": sizes[-1], "endpoints": {
            name: {"http_p50_ratio": big[name]["http_p50_ms"] / small[name]["http_p50_ms"],
                   "sql_p50_ratio": big[name]["sql_engine_p50_ms"] / small[name]["sql_engine_p50_ms"],
                   "raw_p50_ratio": big[name]["raw_engine_p50_ms"] / small[name]["raw_engine_p50_ms"]}
            for name in small}}


def create_admin(var_dir):
    """The superuser the admin part logs in with (Django's users live in the default database)."""
    procs.manage(["createsuperuser", "--noinput", "--username", ADMIN_USER, "--email", "bench@example.com"],
                 env=procs.dataset_env(var_dir, DJANGO_SUPERUSER_PASSWORD=ADMIN_PASSWORD), timeout=120)


def run(*, quick, parts, out, workdir=None):
    cfg = QUICK if quick else FULL
    started = time.monotonic()
    root = tempfile.mkdtemp(prefix="analytics-bench-", dir=workdir)
    results = {
        "mode": "quick" if quick else "full",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "git": git_commit(),
        "config": {k: (v if not isinstance(v, dict) else {str(a): b for a, b in v.items()}) for k, v in cfg.items()},
        "parts": sorted(parts),
        "data": DATA,
        "query_days": DAYS,
        "server": {"gunicorn_threads": 32, "DJANGO_DEBUG": "false", "api_key": True, "throttles": "none",
                   "ENABLE_KAFKA": "false"},
    }
    try:
        if "ingest" in parts:
            bench_ingest(root, cfg, results)
        if "kafka" in parts:
            bench_kafka(root, cfg, results)
        if parts & {"queries", "mixed", "admin", "privacy"}:
            bench_queries(root, cfg, results, parts)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        results["seconds"] = round(time.monotonic() - started, 1)
        with open(out, "w") as f:
            json.dump(results, f, indent=1, default=str)
    text = table(results)
    print(text)
    log(f"done in {results['seconds']:.0f} s; figures in {out}")
    return results
