"""WSGI entry point (gunicorn analytics_site.wsgi)."""

import os
import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "analytics_site.settings")
try:
    django_application = get_wsgi_application()
except ImproperlyConfigured as e:
    # A missing or malformed setting: one line naming it (logging is not configured yet), and
    # exit code 3, on which gunicorn stops instead of booting workers again and again.
    sys.stderr.write(f"Cannot start: {e}\n")
    sys.exit(3)

# docs/architecture.md, Writes: an accepted single event takes a short path past Django's and
# DRF's request handling (same key, throttle, rules, buffer and answer); everything else is Django's.
from viewing.event_shortcut import with_event_shortcut  # noqa: E402

application = with_event_shortcut(django_application)

# docs/architecture.md, Two engines: on the embedded engine the server needs the data directory to itself. Take it
# now, so a directory held by another process stops the server at start with a clear message
# (gunicorn halts on a worker that exits with 3) instead of a 503 on every request.
from django.conf import settings  # noqa: E402

if settings.CLICKHOUSE_EMBEDDED:
    import logging

    from analytics_site.chdb_backend.engine import EngineLocked, open_engine

    try:
        # Kept open for the life of the process: chdb releases the directory when its last
        # connection closes, and another process (`make demo`) could then take it from under
        # the server until its first request.
        _engine_held = open_engine(settings.CLICKHOUSE_DATA_DIR)
    except EngineLocked as e:
        logging.getLogger("analytics_site.wsgi").critical("%s", e)
        sys.exit(3)

# docs/operations.md, The open mode of `make run`: the server says at start-up whether the API is open (DEBUG on, no key yet).
from analytics_site.access.permissions import log_access_mode  # noqa: E402

log_access_mode()

# docs/kafka.md, Running the consumer: with ENABLE_KAFKA the API server process also consumes the stream (on the
# embedded engine no other process may write). Started here so that only a server process
# runs it, never manage.py commands or tests. gunicorn imports this module in each worker
# after forking (do not use --preload, which would start it in the master).
if settings.ENABLE_KAFKA:
    from viewing.kafka.thread import start_consumer_thread  # noqa: E402

    start_consumer_thread()
