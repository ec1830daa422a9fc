"""gunicorn settings (`gunicorn -c python:analytics_site.gunicorn_conf analytics_site.wsgi`).

Reads only the variables it needs through analytics_site.environment (the same parsing and
.env file as the Django settings), never the Django settings themselves: the master process
neither checks the secret key nor creates directories; the worker does, when it loads the app.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from analytics_site.environment import env  # noqa: E402

PORT = env.int("PORT", default=8006)
# 127.0.0.1 unless told otherwise (BIND_ADDRESS=0.0.0.0: every interface; the image sets it).
BIND_ADDRESS = env("BIND_ADDRESS", default="127.0.0.1")
bind = f"[{BIND_ADDRESS}]:{PORT}" if ":" in BIND_ADDRESS else f"{BIND_ADDRESS}:{PORT}"
threads = env.int("GUNICORN_THREADS", default=8)
timeout = env.int("GUNICORN_TIMEOUT", default=60)
graceful_timeout = env.int("GUNICORN_GRACEFUL_TIMEOUT", default=30)
keepalive = 5
worker_class = "gthread"
# The application logs one line per request (analytics_site/middleware.py) with the route and
# the key prefix; gunicorn's own access log would repeat each of them. Opt-in: "-" is stdout.
accesslog = env("GUNICORN_ACCESS_LOG", default=None)
max_requests = 0  # a restarted worker would have to re-open the embedded engine

EMBEDDED = not env("CLICKHOUSE_HOST", default=None)
if EMBEDDED:
    # chdb lets one process own its data directory: one worker, concurrency from threads.
    workers = 1
else:
    workers = env.int("GUNICORN_WORKERS", default=2 * (os.cpu_count() or 1) + 1)


def _http_date_per_second():
    """gunicorn's Date header, formatted once a second instead of once a response
    (email.utils.formatdate: ~4 % of the server's Python time under many single events)."""
    from gunicorn import util

    format_date, last = util.http_date, [None, ""]

    def http_date(timestamp=None):
        if timestamp is not None:
            return format_date(timestamp)
        second = int(time.time())
        if last[0] != second:
            last[1], last[0] = format_date(second), second
        return last[1]

    util.http_date = http_date


# The cyclic garbage collector in the worker (the values consume_stream uses). With the
# defaults (700, 10, 10) a 10,000-event batch request (~60,000 tracked objects: row dicts,
# UUIDs, metadata) set off ~85 young collections and, every few requests, a full one over the
# whole heap: measured with gc.callbacks in the worker, 3 rounds of 100,000 events from 4
# connections, 1.7-2.8 s collecting (6-9 µs an event, a fifth of the server's CPU), against
# 0.5-0.6 s with these thresholds and the start-up heap frozen (gc.freeze: Django, DRF and the
# engine's modules are never garbage; not walked again). Objects are freed by reference
# counting as before; only cycles wait longer (a young generation of 50,000 objects, a few MB).
WORKER_GC_THRESHOLDS = (50_000, 20, 100)


def _garbage_collector_tuned():
    import gc

    gc.freeze()
    gc.set_threshold(*WORKER_GC_THRESHOLDS)


def post_worker_init(worker):
    _http_date_per_second()
    _garbage_collector_tuned()


def when_ready(server):
    if EMBEDDED:
        server.log.info(
            "Embedded ClickHouse: serving with exactly 1 worker process and %d threads "
            "(one process owns the data directory); set CLICKHOUSE_HOST to use a server "
            "and GUNICORN_WORKERS to scale out.",
            threads,
        )
    else:
        server.log.info("ClickHouse server %s: %d workers x %d threads.", env("CLICKHOUSE_HOST"), workers, threads)
