"""gunicorn settings, read from the environment (`gunicorn -c python:analytics_site.gunicorn_conf`)."""

import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from analytics_site.settings import env, env_int  # noqa: E402

log = logging.getLogger("gunicorn.error")

PORT = env_int("PORT", 8006)
bind = f"0.0.0.0:{PORT}"
threads = env_int("GUNICORN_THREADS", 8)
timeout = env_int("GUNICORN_TIMEOUT", 60)
graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = 5
worker_class = "gthread"
accesslog = env("GUNICORN_ACCESS_LOG", "-")
max_requests = 0  # a restarted worker would have to re-open the embedded engine

EMBEDDED = not env("CLICKHOUSE_HOST")
if EMBEDDED:
    # chdb lets one process own its data directory: one worker, concurrency from threads.
    workers = 1
else:
    workers = env_int("GUNICORN_WORKERS", 2 * (os.cpu_count() or 1) + 1)


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
