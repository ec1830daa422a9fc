"""Operator errors of `manage.py` as one line naming the cause and the fix, instead of a
traceback: missing or malformed settings, a data directory held by another process, a
ClickHouse server that does not answer, a ClickHouse database not created yet.

Anything else is a bug and keeps its traceback; `--traceback` keeps it for these too.
"""

import os

from clickhouse_driver import errors as driver_errors
from django.core.exceptions import ImproperlyConfigured

UNKNOWN_DATABASE = 81


def _chain(error: BaseException):
    """The error and its causes, outermost first (Django wraps driver errors)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def explain(error: BaseException) -> str | None:
    """One line saying what went wrong and what to do, or None for an unexpected error."""
    from analytics_site.chdb_backend.engine import EngineLocked

    for cause in _chain(error):
        if isinstance(cause, ImproperlyConfigured):
            return _first_line(cause)
        if isinstance(cause, EngineLocked):
            return _first_line(cause)
        if isinstance(cause, driver_errors.NetworkError | driver_errors.SocketTimeoutError):
            host = os.environ.get("CLICKHOUSE_HOST") or "?"
            port = os.environ.get("CLICKHOUSE_PORT") or "9000"
            reason = _first_line(cause).removeprefix("Code: 210.").removeprefix("Code: 209.").strip()
            return (
                f"The ClickHouse server {host}:{port} does not answer ({reason}): start it, or "
                "correct CLICKHOUSE_HOST / CLICKHOUSE_PORT (unset CLICKHOUSE_HOST for the "
                "embedded engine)."
            )
        if isinstance(cause, driver_errors.ServerException) and cause.code == UNKNOWN_DATABASE:
            return (
                "The ClickHouse database does not exist yet: run `.venv/bin/python manage.py "
                "migrate` first (it creates the database and the tables)."
            )
    return None
