"""Benchmark of the privacy endpoints, on the largest dataset of the queries part: a whole-window
export (CSV and Parquet: time, size, and how much the server's memory grows while it streams)
and erasure (p50 over users with about 1,000 events each).

`python -m bench.privacy candidates` (JSON spec on stdin: dir, count, target) opens the data
directory before the server starts and picks the users to erase; `measure(...)` then runs
against the server, after every other part (erasure changes the dataset).
`python -m bench.privacy existing` (spec: dir, last, label) runs this part alone on a dataset
made earlier, e.g. `echo '{"dir": "/tmp/d/data", "last": "2026-11-30", "label": "10M"}' |
.venv/bin/python -m bench.privacy existing > privacy.json` (the rows go to stderr).
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from . import procs
from .stats import median

READ_BYTES = 1 << 20


def mode_candidates(spec):
    """The `count` users whose number of events is closest to `target`."""
    from .phases import engine_client

    client = engine_client(spec["dir"])
    rows = client.execute(
        "SELECT toString(user_id), count() AS n FROM viewing_events GROUP BY user_id "
        "ORDER BY abs(toInt64(n) - %(target)s), user_id LIMIT %(count)s",
        {"target": spec["target"], "count": spec["count"]},
    )
    return {"users": [{"user_id": u, "events": n} for u, n in rows]}


def privacy_key(var_dir):
    proc = subprocess.run([procs.PYTHON, "manage.py", "create_api_key", "--name", "bench-privacy", "--scope", "erase",
                           "--scope", "export"], cwd=procs.ROOT, env=procs.dataset_env(var_dir), capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"create_api_key exited {proc.returncode}: {proc.stderr[-2000:]}")
    return {"Authorization": f"Api-Key {proc.stdout.strip()}"}


def _rss_mib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
        except (OSError, StopIteration):
            pass
    return total


def export_once(server, headers, path):
    """Download `path` to nowhere, sampling the worker's RSS every 100 ms."""
    pids = server.worker_pids()
    before = _rss_mib(pids)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.wait(0.1):
            peak[0] = max(peak[0], _rss_mib(pids))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    t0 = time.perf_counter()
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        size = 0
        while piece := response.read(READ_BYTES):
            size += len(piece)
        status = response.status
    finally:
        conn.close()
        done.set()
        sampler.join()
    seconds = time.perf_counter() - t0
    return {"status": status, "bytes": size, "seconds": seconds, "mib_per_s": size / 2**20 / seconds,
            "rss_before_mib": before, "rss_peak_mib": peak[0], "rss_growth_mib": peak[0] - before}


def erase_once(server, headers, user):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    t0 = time.perf_counter()
    try:
        conn.request("DELETE", f"/api/v1/analytics/users/{user['user_id']}", headers=headers)
        response = conn.getresponse()
        body = json.loads(response.read() or b"{}")
    finally:
        conn.close()
    return {"status": response.status, "ms": (time.perf_counter() - t0) * 1000, "events": user["events"],
            "events_deleted": body.get("events_deleted")}


def measure(server, var_dir, candidates, *, days, log, last=None):
    """Exports of the `days` dates up to `last` (default today, UTC), then the erasures."""
    headers = privacy_key(var_dir)
    today = last or datetime.now(UTC).date()
    window = f"from={today - timedelta(days=days - 1)}&to={today}"
    exports = {}
    # One day first: what any first export costs the server (threads, code paths) shows
    # there; the whole window after it shows what 30 times the rows add (memory flat: ~0).
    log("privacy: export of one day as csv")
    exports["csv_day"] = export_once(server, headers, f"/api/v1/analytics/events/export?from={today}&to={today}")
    for output in ("csv", "parquet"):
        log(f"privacy: export of the whole window as {output}")
        exports[output] = export_once(server, headers, f"/api/v1/analytics/events/export?{window}&format={output}")
    erasures = []
    for user in candidates:
        log(f"privacy: erase a user with {user['events']:,} events")
        erasures.append(erase_once(server, headers, user))
    return {
        "exports": exports,
        "erasures": erasures,
        "summary": {
            "erase_p50_ms": median([e["ms"] for e in erasures]),
            "erase_events_median": median([e["events"] for e in erasures]),
            "erase_errors": sum(e["status"] != 200 or e["events_deleted"] != e["events"] for e in erasures),
            "erase_rounds": len(erasures),
            **{f"export_{k}_{f}": v[k] for f, v in exports.items() for k in ("seconds", "bytes", "rss_growth_mib")},
            "export_errors": sum(v["status"] != 200 for v in exports.values()),
        },
    }


def rows(results):
    """The lines of the benchmark table."""
    p = results.get("privacy")
    if not p:
        return []
    s = p["summary"]
    out = [f"| privacy {p['dataset']}: erase a user (~{s['erase_events_median']:,.0f} events), p50 of "
           f"{s['erase_rounds']} ({s['erase_errors']} errors) | {s['erase_p50_ms']:,.0f} ms | | | |"]
    for f in ("csv_day", "csv", "parquet"):
        if f"export_rss_growth_mib_{f}" not in s:
            continue  # results of a run before the one-day export
        growth = s[f"export_rss_growth_mib_{f}"]
        what = "one date's events as csv (the server's first export)" if f == "csv_day" else f"every event as {f}"
        out.append(f"| privacy {p['dataset']}: export of {what} ({s[f'export_bytes_{f}'] / 2**20:,.0f} MiB"
                   f"{', errors' if s['export_errors'] else ''}) | {s[f'export_seconds_{f}']:,.1f} s, server RSS "
                   f"+{growth:,.0f} MiB | RSS growth < 100 MiB | | {'met' if growth < 100 else '**missed**'} |")
    return out


def mode_existing(spec):
    """The privacy part alone on a dataset made earlier (`dir`: its var dir, migrated; `last`:
    the last date of its window, as generate_events made it): the server, the exports and
    five erasures, printed as the table's rows. It erases: run it on a copy you can lose."""
    from datetime import date

    # In a process of its own: the engine it opens must be closed before the server opens it.
    candidates = procs.run_json(["bench.privacy", "candidates"], {
        "dir": os.path.join(spec["dir"], "clickhouse"), "count": 5, "target": 1000}, env=procs.dataset_env(spec["dir"]))["users"]
    with procs.Server(spec["dir"]) as server:
        result = measure(server, spec["dir"], candidates, days=spec.get("days", 30),
                         log=lambda message: print(message, file=sys.stderr, flush=True),
                         last=date.fromisoformat(spec["last"]))
    result["dataset"] = spec.get("label", "existing")
    result["load"] = os.getloadavg()
    print("\n".join(rows({"privacy": result})), file=sys.stderr)
    return result


def main():
    """`python -m bench.privacy candidates|existing` with a JSON spec on stdin."""
    mode = sys.argv[1]
    spec = json.load(sys.stdin)
    json.dump({"candidates": mode_candidates, "existing": mode_existing}[mode](spec), sys.stdout)


if __name__ == "__main__":
    main()
