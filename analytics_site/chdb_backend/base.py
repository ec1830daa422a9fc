"""django-clickhouse-backend with its connection pool handing out embedded-engine clients.

Only the client construction changes: SQL compilation, schema editing, introspection and
migrations are the upstream backend's, so code cannot tell which engine it runs on. The few
places that need more than the library's public API are all in upstream.py.
"""

from __future__ import annotations

import threading
from typing import Any

from clickhouse_backend.backend import base
from django.utils.asyncio import async_unsafe

from .upstream import DriverConnection


class DatabaseWrapper(base.DatabaseWrapper):
    display_name = "ClickHouse (embedded, chdb)"

    # Django makes a wrapper per thread; they share one driver connection per alias (and so one
    # pool of engine connections), as the library does for a server. A new set of parameters
    # (the test database) gets a new one.
    _shared_lock = threading.Lock()
    _shared: dict[str, tuple[dict[str, Any], DriverConnection]] = {}

    @async_unsafe
    def get_new_connection(self, conn_params: dict[str, Any]) -> DriverConnection:
        with self._shared_lock:
            shared = self._shared.get(self.alias)
            if shared is not None and shared[0] == conn_params:
                return shared[1]
            conn = DriverConnection(**conn_params)
            self._shared[self.alias] = (conn_params, conn)
        return conn
