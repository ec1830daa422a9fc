"""Time zones against UTC at one data size: every windowed read over the same 30 local dates
(a from/to window ending today) in UTC, Asia/Kathmandu (+05:45), Asia/Kolkata (+05:30) and
America/New_York, all in one process, the rounds interleaved (round r of every case before
round r + 1), so the ratios to UTC do not depend on when the shared machine's load changed.

    python -m bench.time_zones --var-dir DIR --generate 10000000   # once: migrate, generate
    python -m bench.time_zones --var-dir DIR --parts sql,selectors,http

Parts:
- `sql`: each statement the selectors build (viewing.selectors.statement) run on the engine
  (chdb, Native output, not decoded): p50 and the rows it read (chdb has no system.query_log;
  its result says how many rows the query read).
- `selectors`: the selectors in this process (Python window logic + SQL + decoding), no HTTP.
- `http`: gunicorn as in the benchmark (bench.procs.Server) and the benchmark's load client,
  one client.

Each part prints one table: p50 per zone and its ratio to UTC. Not a test.
"""

import argparse
import json
import os
import random
import resource
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta

from . import procs
from .stats import median_of_rounds, summary

ZONES = ("UTC", "Asia/Kathmandu", "Asia/Kolkata", "America/New_York")
DAYS = 30
LAST = None  # the windows' last date (--last); None: today (UTC)


def _window(tz, days=DAYS):
    from viewing.windows import Window

    last = LAST or datetime.now(UTC).date()
    return Window(last - timedelta(days=days - 1), last, tz)


def _setup(var_dir):
    os.environ.update(procs.dataset_env(var_dir))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")
    import django

    django.setup()


def _fixtures(var_dir, users):
    """User ids (a fixed sample) and the movie with the most starts."""
    from django.db import connections

    with connections["clickhouse"].cursor() as cursor:
        cursor.execute("SELECT DISTINCT user_id FROM user_stats_daily ORDER BY cityHash64(user_id) LIMIT %(n)s",
                       {"n": users})
        user_ids = [u for (u,) in cursor.fetchall()]
        cursor.execute("SELECT movie_id FROM popular_content_daily GROUP BY movie_id ORDER BY sum(starts) DESC LIMIT 1")
        ((movie,),) = cursor.fetchall()
    return user_ids, movie


def _cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _interleaved(cases, rounds, count):
    """{name: callable(i)} → {name: [summary per round]}; one warm-up call each. Each round's
    summary also has `cpu_ms`: the median CPU time of this process per call (the engine runs
    in it), steadier than wall time on a machine shared with other work."""
    for call in cases.values():
        call(0)
    out = {name: [] for name in cases}
    for _ in range(rounds):
        for name, call in cases.items():
            latencies, cpu = [], []
            for i in range(count):
                c0, t0 = _cpu(), time.perf_counter()
                call(i)
                latencies.append((time.perf_counter() - t0) * 1000)
                cpu.append((_cpu() - c0) * 1000)
            out[name].append({**summary(latencies), "cpu_ms": statistics.median(cpu)})
    return out


def _table(title, figures, extra=None):
    """figures: {(read, zone): [round summaries]} → a markdown table, ratios to UTC."""
    reads = list(dict.fromkeys(read for read, _zone in figures))
    lines = [f"\n{title}", "", "| read | " + " | ".join(ZONES) + " | " + " · ".join(
        f"{z.split('/')[-1]}/UTC" for z in ZONES[1:]) + " |", "|---" * (len(ZONES) + 2) + "|"]
    for read in reads:
        p50 = {z: median_of_rounds(figures[(read, z)], "p50_ms") for z in ZONES if (read, z) in figures}
        cpu = {z: median_of_rounds(figures[(read, z)], "cpu_ms") for z in p50}
        cells = [f"{p50[z]:.1f}" + (f" / {cpu[z]:.1f}" if cpu[z] is not None else "")
                 + (f" ({extra[(read, z)]})" if extra and (read, z) in extra else "")
                 if z in p50 else "" for z in ZONES]
        ratios = [f"{p50[z] / p50['UTC']:.2f}" + (f" ({cpu[z] / cpu['UTC']:.2f})" if cpu[z] and cpu["UTC"] else "")
                  if z in p50 and p50.get("UTC") else "" for z in ZONES[1:]]
        lines.append(f"| {read} | " + " | ".join(cells) + " | " + " · ".join(ratios) + " |")
    return "\n".join(lines)


def part_sql(args, users, movie):
    """Each statement of the selectors on the engine: p50 ms and rows read."""
    from viewing import selectors

    from .phases import engine_client

    client = engine_client(os.path.join(args.var_dir, "clickhouse"))
    client.execute("SELECT 1")  # connects: parameters are substituted with the server's time zone
    engine, context = client.connection._engine, client.connection.context
    reads = {
        "popular": lambda w: [selectors.statement("popular", window=w, limit=10)],
        "user stats": lambda w: [selectors.statement("user_stats", window=w, user_id=u) for u in users],
        "trends by day": lambda w: [selectors.statement("trends", window=w, interval="day")],
        "trends by week": lambda w: [selectors.statement("trends", window=w, interval="week")],
        "trends by hour (7 dates)": lambda w: [selectors.statement(
            "trends", window=_window(w.tz, 7), interval="hour")],
        "peak hours": lambda w: [selectors.statement("peak_hours", window=w)],
    }
    texts, rows_read = {}, {}
    for read, build in reads.items():
        for tz in ZONES:
            statements = [client.substitute_params(sql, params, context) for sql, params in build(_window(tz))]
            texts[(read, tz)] = statements
            rows_read[(read, tz)] = f"{engine.query(statements[0], 'Native').storage_rows_read():,} rows read"
    cases = {key: (lambda i, s=s: engine.query(s[i % len(s)], "Native").bytes()) for key, s in texts.items()}
    figures = _interleaved(cases, args.rounds, args.count)
    return _table("SQL on the engine (p50 ms wall / CPU, rows read)", figures, rows_read)


def part_selectors(args, users, movie):
    from viewing import engagement, selectors

    reads = {
        "popular": lambda w, i: selectors.popular_content(window=w, limit=10),
        "user stats": lambda w, i: selectors.user_stats(user_id=users[i % len(users)], window=w),
        "trends by day": lambda w, i: selectors.trends(window=w),
        "trends by week": lambda w, i: selectors.trends(window=w, interval="week"),
        "trends by hour (7 dates)": lambda w, i: selectors.trends(window=_window(w.tz, 7), interval="hour"),
        "trends compared": lambda w, i: selectors.trends(window=w, compare="previous_period"),
        "peak hours": lambda w, i: selectors.peak_hours(window=w),
        "summary": lambda w, i: engagement.summary(window=w),
        "retention (top movie)": lambda w, i: engagement.retention(movie_id=movie, window=w),
        "concurrency by day": lambda w, i: engagement.concurrency(window=w, interval="day"),
    }
    if args.reads:
        reads = {k: v for k, v in reads.items() if k in args.reads}
    windows = {tz: _window(tz) for tz in ZONES}
    cases = {(read, tz): (lambda i, f=f, w=windows[tz]: f(w, i)) for read, f in reads.items() for tz in ZONES}
    return _table("Selectors in-process (p50 ms wall / CPU)", _interleaved(cases, args.rounds, args.count))


def part_http(args, users, movie):
    window = lambda tz: f"from={_window(tz).first}&to={_window(tz).last}&tz={tz}"  # noqa: E731
    paths = {
        "popular": lambda w: [f"/api/v1/analytics/content/popular?{w}&limit=10"],
        "user stats": lambda w: [f"/api/v1/analytics/user/{u}/stats?{w}" for u in users],
        "trends": lambda w: [f"/api/v1/analytics/trends?{w}"],
        "trends compared": lambda w: [f"/api/v1/analytics/trends?{w}&compare=previous_period"],
        "peak hours": lambda w: [f"/api/v1/analytics/peak-hours?{w}"],
        "summary": lambda w: [f"/api/v1/analytics/summary?{w}"],
        "retention (top movie)": lambda w: [f"/api/v1/analytics/content/{movie}/retention?{w}"],
        "concurrency by day": lambda w: [f"/api/v1/analytics/concurrency?{w}&interval=day"],
    }
    if args.reads:
        paths = {k: v for k, v in paths.items() if k in args.reads}
    headers = procs.api_key(args.var_dir)
    names = {f"{read}|{tz}": (read, tz) for read in paths for tz in ZONES}
    with procs.Server(args.var_dir) as server:
        result = procs.run_json(["bench.load"], {
            "mode": "get", "port": server.port, "rounds": args.rounds, "headers": headers,
            "cases": {name: {"paths": paths[read](window(tz)), "concurrency": 1, "count": args.count}
                      for name, (read, tz) in names.items()}})
    figures = {names[name]: rounds for name, rounds in result.items() if name in names}
    return _table("HTTP, gunicorn, one client (p50 ms)", figures)


def generate(var_dir, events):
    procs.fresh_dataset(os.path.dirname(var_dir) or ".", os.path.basename(var_dir))
    data = procs.data(1, events)
    seconds, _rss, _err = procs.manage(
        ["generate_events", "--events", str(events), "--days", str(data["days"]), "--users", str(data["users"]),
         "--movies", str(data["movies"]), "--seed", "1", "-v0"], env=procs.dataset_env(var_dir), timeout=7200)
    procs.log(f"generated {events:,} events in {seconds:.0f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.time_zones", description=__doc__.split("\n\n")[0])
    parser.add_argument("--var-dir", required=True, help="the dataset (ANALYTICS_VAR_DIR: clickhouse/ under it)")
    parser.add_argument("--generate", type=int, metavar="N", help="first make a fresh dataset of N generated events")
    parser.add_argument("--parts", default="sql,selectors,http", help="sql, selectors, http (all)")
    parser.add_argument("--reads", help="only these selector reads (comma-separated names as printed)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=10, help="calls per case and round")
    parser.add_argument("--users", type=int, default=50, help="users for user stats")
    parser.add_argument("--last", type=date.fromisoformat, help="the windows' last date (default: today, UTC)")
    args = parser.parse_args(argv)
    global LAST
    LAST = args.last
    args.var_dir = os.path.abspath(args.var_dir)
    args.reads = set(args.reads.split(",")) if args.reads else None
    if args.generate:
        generate(args.var_dir, args.generate)
    parts = args.parts.split(",")
    procs.log(f"load {os.getloadavg()[0]:.1f}; commit {_commit()}")
    if "http" in parts and len(parts) > 1:
        # The server owns the data directory while it runs: the in-process parts run in a child.
        in_process = ",".join(p for p in parts if p != "http")
        child = [procs.PYTHON, "-m", "bench.time_zones", "--var-dir", args.var_dir, "--parts", in_process,
                 "--rounds", str(args.rounds), "--count", str(args.count), "--users", str(args.users)]
        if args.reads:
            child += ["--reads", ",".join(sorted(args.reads))]
        if args.last:
            child += ["--last", args.last.isoformat()]
        import subprocess

        subprocess.run(child, check=True, cwd=procs.ROOT)
        parts = ["http"]
    rng = random.Random(13)
    if parts != ["http"]:
        _setup(args.var_dir)
        users, movie = _fixtures(args.var_dir, args.users)
        rng.shuffle(users)
    else:
        users, movie = _users_from_child(args)
    for part in parts:
        print({"sql": part_sql, "selectors": part_selectors, "http": part_http}[part](args, users, movie), flush=True)
    procs.log(f"load {os.getloadavg()[0]:.1f}")
    return 0


def _users_from_child(args):
    """The fixtures, read by a child process (the server will own the directory)."""
    import subprocess

    code = ("import json,sys; from bench import time_zones as t; t._setup(sys.argv[1]); "
            "u, m = t._fixtures(sys.argv[1], int(sys.argv[2])); print(json.dumps([[str(x) for x in u], str(m)]))")
    out = subprocess.run([procs.PYTHON, "-c", code, args.var_dir, str(args.users)], check=True, cwd=procs.ROOT,
                         capture_output=True, text=True, env=procs.dataset_env(args.var_dir)).stdout
    users, movie = json.loads(out.strip().splitlines()[-1])
    return users, movie


def _commit():
    import subprocess

    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=procs.ROOT, capture_output=True,
                          text=True).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
