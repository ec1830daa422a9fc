"""The benchmark run: phases in order, each in the processes it needs, then the table and
bench/results.json."""

import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime

from analytics_site.chdb_backend.filesystem import describe, filesystem_of

from . import privacy, procs
from .ingestion import bench_ingest, bench_kafka, bench_open_loop
from .procs import log
from .report import table
from .stats import median_of_rounds

PARTS = {
    "ingest": "engine floor (one Native insert, and the same rows in 10,000-row inserts) vs the HTTP batch "
              "endpoint; single events under 32 clients and at fixed arrival rates (open loop: events/s, "
              "p50/p99, parts per 1,000 events)",
    "openloop": "only the open-loop rows of ingest: single events at fixed arrival rates (capacity, p50/p99, "
                "parts per 1,000 events, CPU per event of server and load generator)",
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
    "open_loop_rates": [250, 500, 1000],
    "open_loop_seconds": 4,
    "kafka_messages": [20_000, 60_000],
    # Half the full run's samples a round for the reads (SQL and HTTP took 3 of the quick
    # run's 7.7 minutes; 6 now), each p50 still a median of 5 rounds.
    "query_count": 10,
    "http_count": 10,
    "mixed_seconds": 2,
    "admin_count": 5,
}
FULL = {
    "sizes": [1_000_000, 10_000_000],
    "rounds": 5,
    "ingest_events": 200_000,
    "single_seconds": 6,
    "open_loop_rates": [250, 500, 1000, 1500],
    "open_loop_seconds": 6,
    "kafka_messages": [50_000, 300_000],
    "query_count": 20,
    "http_count": 30,
    "mixed_seconds": 4,
    "admin_count": 5,
}
DATA = procs.DATA
DAYS = 30  # every query reads the whole generated window
ADMIN_USER, ADMIN_PASSWORD = "bench-admin", uuid.uuid4().hex


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


# --- parts --------------------------------------------------------------------------------------

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
        # Where the datasets live (--workdir): ext4 without a journal makes every insert pay the
        # kernel's scan of recently deleted inodes (analytics_site/chdb_backend/filesystem.py).
        "data_filesystem": describe(filesystem_of(root)),
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
        elif "openloop" in parts:
            results["ingest"] = {"open_loop": bench_open_loop(root, cfg)}
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
