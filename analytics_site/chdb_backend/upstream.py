"""Every place the embedded backend leans on django-clickhouse-backend beyond its public API.

The library has no hook for the one thing the embedded engine changes, which client class its
connection pool makes: `ClickhousePool._connect` builds its own module's `Client`. So `Pool`
overrides that private method (and keeps the pool's private bookkeeping the way `pull`/`push`
expect it), and `DriverConnection` swaps the pool a `Connection` builds for that `Pool`.

Nothing else in the backend touches the library's internals. The version is pinned
(requirements.txt), and tests/analytics_site/test_chdb_upstream.py fingerprints the library
code this module relies on: an upgrade that changes any of it fails that test by name.
"""

from __future__ import annotations

from typing import Any

from clickhouse_backend.backend import base as backend_base
from clickhouse_backend.driver import client as backend_client
from clickhouse_backend.driver import connection as backend_connection
from clickhouse_backend.driver import pool as backend_pool

from .transport import EmbeddedClientMixin

# The library code the classes below (and base.DatabaseWrapper, which replaces
# get_new_connection wholesale) depend on: what test_chdb_upstream.py fingerprints.
RELIED_ON = (
    backend_base.DatabaseWrapper.get_new_connection,
    backend_pool.ClickhousePool.__init__,
    backend_pool.ClickhousePool._connect,
    backend_pool.ClickhousePool.pull,
    backend_pool.ClickhousePool.push,
    backend_pool.ClickhousePool.cleanup,
    backend_connection.Connection.__init__,
    backend_connection.Connection._make_client,
    backend_connection.Connection.close,
    backend_connection.Cursor.close,
)


class Client(EmbeddedClientMixin, backend_client.Client):
    """The library's Client (its default settings, dict parameters for INSERT) on chdb."""


class Pool(backend_pool.ClickhousePool):
    """The library's pool, handing out embedded-engine clients."""

    def _connect(self, key: str | int | None = None) -> Client:
        # As ClickhousePool._connect, with this module's Client: pull() registers a client
        # it hands out under `key` in _used/_rused, push() and cleanup() read them back.
        client = Client(**self.connection_args)
        if key is not None:
            self._used[key] = client
            self._rused[id(client)] = key
        else:
            self._pool.append(client)
        return client


class DriverConnection(backend_connection.Connection):
    """The library's dbapi Connection (pooled cursors) over a `Pool` of embedded clients."""

    def __init__(
        self, *args: Any, connections_min: int = 2, connections_max: int = 64, **kwargs: Any
    ) -> None:
        # One chdb connection per client; a few suffice for a threaded worker. The pool the
        # library's __init__ builds is of socket clients; asked for none, it makes none, and
        # is replaced at once (cursors reach the pool through the public `pool` attribute).
        super().__init__(*args, connections_min=0, connections_max=0, **kwargs)
        self.pool = Pool(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.database,
            **{
                **self.connection_kwargs,
                "connections_min": connections_min,
                "connections_max": connections_max,
            },
        )
