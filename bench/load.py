"""The load client: HTTP requests from threads with keep-alive connections, in its own process.

Run by the orchestrator as `python -m bench.load` with a JSON spec on stdin; prints a JSON
result on stdout. Bodies are built before the clock starts, so what is timed is the server.
"""

import http.client
import json
import random
import sys
import threading
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from itertools import cycle

from viewing.generator import event_batches

from .stats import cpu_seconds, summary

HOST = "127.0.0.1"
TIMEOUT = 120


def event_json(event):
    """A generator row (viewing.generator) as the API's event object."""
    return {
        "id": str(event["id"]),
        "user_id": str(event["user_id"]),
        "movie_id": str(event["movie_id"]),
        "event_type": event["event_type"],
        "position_seconds": event["position_seconds"],
        "event_time": event["event_time"].isoformat() + "Z",
        "session_id": str(event["session_id"]),
        "metadata": json.loads(event["metadata"]),
    }


def generated(data):
    """The rows of one round: the same parameters give the same rows in every process. With
    `live_minutes`, each row's time is moved into the last that many minutes (live players),
    the same seed giving the same offsets."""
    rows = [
        row
        for batch in event_batches(events=data["events"], days=data["days"], users=data["users"],
                                   movies=data["movies"], seed=data["seed"], batch_size=100_000)
        for row in batch
    ]
    if data.get("live_minutes"):
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        offsets = random.Random(f"live:{data['seed']}")
        for row in rows:
            row["event_time"] = now - timedelta(seconds=offsets.randrange(60 * data["live_minutes"]))
    return rows


class Client:
    """One keep-alive connection; reconnects after an error."""

    def __init__(self, port, headers=None):
        self.port = port
        self.headers = dict(headers or {})
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        """(status, body bytes, headers); status 0 on a connection error."""
        all_headers = dict(self.headers, **(headers or {}))
        if body is not None:
            all_headers.setdefault("Content-Type", "application/json")
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=TIMEOUT)
            try:
                self.conn.request(method, path, body=body, headers=all_headers)
                response = self.conn.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
                return response.status, data, response
            except (http.client.HTTPException, OSError):
                self.close()
                # A keep-alive connection the server closed between requests: retry once
                # on a fresh one; anything else is an error.
                if attempt == 2:
                    return 0, b"", None
        return 0, b"", None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def run_concurrent(port, requests, *, concurrency, seconds=None, count=None, repeat=True, headers=None):
    """Send `requests` ([(method, path, body)]) from `concurrency` threads, each taking the next
    one, until `seconds` have passed or `count` were sent (or the list ends when not
    `repeat`). Returns latencies (ms), statuses and the elapsed wall time."""
    source = cycle(requests) if repeat else iter(requests)
    lock = threading.Lock()
    latencies, statuses = [], {}
    sent = [0]
    start_barrier = threading.Barrier(concurrency + 1)
    deadline = [None]

    def worker():
        client = Client(port, headers)
        client.request("GET", "/health")  # open the connection before the clock starts
        start_barrier.wait()
        mine = []
        try:
            while True:
                with lock:
                    if count is not None and sent[0] >= count:
                        break
                    if deadline[0] is not None and time.monotonic() >= deadline[0]:
                        break
                    try:
                        method, path, body = next(source)
                    except StopIteration:
                        break
                    sent[0] += 1
                t0 = time.perf_counter()
                status, _, _ = client.request(method, path, body)
                mine.append(((time.perf_counter() - t0) * 1000, status))
        finally:
            client.close()
            with lock:
                for latency, status in mine:
                    latencies.append(latency)
                    statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    start_barrier.wait()
    started = time.monotonic()
    if seconds is not None:
        deadline[0] = started + seconds
    for t in threads:
        t.join(timeout=(seconds or 0) + TIMEOUT + 30)
    elapsed = time.monotonic() - started
    errors = sum(n for status, n in statuses.items() if not 200 <= status < 300)
    return {
        **summary(latencies),
        "elapsed_s": elapsed,
        "requests_per_s": len(latencies) / elapsed if elapsed else None,
        "statuses": {str(k): v for k, v in statuses.items()},
        "errors": errors,
        "error_rate": errors / len(latencies) if latencies else None,
    }


# --- modes --------------------------------------------------------------------------------------

def mode_batch(spec):
    """The batch endpoint, `batch` events a request, each round its own events, for every
    number of connections in `concurrency` (default [1]): with 1, one request after the other;
    with n, n keep-alive connections each sending its next request as soon as its previous one
    is answered (a producer with a connection pool), so n requests are in flight. Rounds are
    interleaved (round r of every concurrency before round r + 1), so a change of load on the
    shared machine touches each alike. With `server_pids`, each round also gives the server's
    CPU per event (every thread: Python and the engine)."""
    concurrency = spec.get("concurrency", [1])
    pids = spec.get("server_pids") or []
    out = {n: [] for n in concurrency}
    for data in spec["rounds"]:
        for k, n in enumerate(concurrency):
            # Each concurrency its own events (another seed: new ids, so every event is stored).
            events = [event_json(e) for e in generated(dict(data, seed=data["seed"] + 1000 * k))]
            size = spec["batch"]
            bodies = [json.dumps(events[i : i + size]).encode() for i in range(0, len(events), size)]
            requests = [("POST", "/api/v1/analytics/events/batch", body) for body in bodies]
            cpu = cpu_seconds(pids)
            result = run_concurrent(spec["port"], requests, concurrency=n, repeat=False, headers=spec.get("headers"))
            # Only what the server accepted counts; a failed round says so instead of looking fast.
            result["events"] = len(events) if not result["errors"] else None
            result["events_per_s"] = result["events"] / result["elapsed_s"] if result["events"] else None
            result["concurrency"] = n
            if pids:
                result["server_cpu_us_per_event"] = 1e6 * (cpu_seconds(pids) - cpu) / len(events)
            out[n].append(result)
    return {"rounds": out[concurrency[0]], "by_concurrency": {str(n): rounds for n, rounds in out.items()}}


def mode_single(spec):
    """The single-event endpoint under `concurrency` clients for `seconds` a round."""
    rounds = []
    for data in spec["rounds"]:
        bodies = [json.dumps(event_json(e)).encode() for e in generated(data)]
        requests = [("POST", "/api/v1/analytics/events", body) for body in bodies]
        result = run_concurrent(spec["port"], requests, concurrency=spec["concurrency"],
                                seconds=data["seconds"], repeat=False, headers=spec.get("headers"))
        result["events"] = result["statuses"].get("201", 0)
        result["events_per_s"] = result["events"] / result["elapsed_s"]
        rounds.append(result)
    return {"rounds": rounds}


def mode_get(spec):
    """Named cases of GET requests: {name: {paths, concurrency, seconds | count}}, `rounds` each.
    Rounds are interleaved (round r of every case before round r + 1), so a change of load on a
    shared machine touches every case alike: some rows are ratios of two cases (a time zone
    against UTC)."""
    headers = spec.get("headers")
    requests = {name: [("GET", path, None) for path in case["paths"]] for name, case in spec["cases"].items()}
    for name in requests:
        run_concurrent(spec["port"], requests[name][:5], concurrency=1, count=5, headers=headers)  # warm-up
    out = {name: [] for name in requests}
    for _ in range(spec["rounds"]):
        for name, case in spec["cases"].items():
            out[name].append(run_concurrent(spec["port"], requests[name], concurrency=case["concurrency"],
                                            seconds=case.get("seconds"), count=case.get("count"), headers=headers))
    return out


def _cookies(response, jar):
    for header, value in response.getheaders():
        if header.lower() == "set-cookie":
            name, _, rest = value.partition("=")
            jar[name.strip()] = rest.split(";", 1)[0]


def admin_login(port, username, password):
    """Log into the Django admin; returns the Cookie header of the session."""
    client = Client(port)
    jar = {}
    status, body, response = client.request("GET", "/admin/login/")
    _cookies(response, jar)
    html = body.decode()
    marker = 'name="csrfmiddlewaretoken" value="'
    token = html[html.index(marker) + len(marker):].split('"', 1)[0]
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "username": username,
                                   "password": password, "next": "/admin/"})
    status, body, response = client.request(
        "POST", "/admin/login/", form.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())})
    _cookies(response, jar)
    client.close()
    if status != 302 or "sessionid" not in jar:
        raise SystemExit(f"admin login failed: {status} {body[:300]!r}")
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def mode_admin(spec):
    """The admin changelist and an exact-UUID search, logged in as a superuser."""
    cookie = admin_login(spec["port"], spec["username"], spec["password"])
    out = {}
    for name, paths in spec["cases"].items():
        requests = [("GET", path, None) for path in paths]
        run_concurrent(spec["port"], requests[:2], concurrency=1, count=2, headers={"Cookie": cookie})
        out[name] = [
            run_concurrent(spec["port"], requests, concurrency=1, count=spec["count"], headers={"Cookie": cookie})
            for _ in range(spec["rounds"])
        ]
    return out


MODES = {"batch": mode_batch, "single": mode_single, "get": mode_get, "admin": mode_admin}


def main():
    spec = json.load(sys.stdin)
    result = MODES[spec["mode"]](spec)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
