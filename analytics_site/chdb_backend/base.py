"""django-clickhouse-backend with its connection pool handing out embedded-engine clients.

Only the client construction changes: SQL compilation, schema editing, introspection and
migrations are the upstream backend's, so code cannot tell which engine it runs on.
"""

from clickhouse_backend.backend import base
from clickhouse_backend.driver import client as backend_client
from clickhouse_backend.driver import connection as backend_connection
from clickhouse_backend.driver import pool as backend_pool
from clickhouse_driver.dbapi import connection as dbapi_connection

from .transport import EmbeddedClientMixin, EngineLocked  # noqa: F401 (re-exported)


class Client(EmbeddedClientMixin, backend_client.Client):
    pass


class Pool(backend_pool.ClickhousePool):
    def _connect(self, key=None):
        client = Client(**self.connection_args)
        if key is not None:
            self._used[key] = client
            self._rused[id(client)] = key
        else:
            self._pool.append(client)
        return client


class DriverConnection(backend_connection.Connection):
    def __init__(self, *args, **kwargs):
        # One chdb connection per client; a few suffice for a threaded worker.
        kwargs.setdefault("connections_min", 2)
        kwargs.setdefault("connections_max", 64)
        dbapi_connection.Connection.__init__(self, *args, **kwargs)
        self.pool = Pool(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.database,
            **self.connection_kwargs,
        )


class DatabaseWrapper(base.DatabaseWrapper):
    display_name = "ClickHouse (embedded, chdb)"

    def get_new_connection(self, conn_params):
        with self._connection_sharing_lock:
            if self.alias in self._clickhouse_connections:
                params, conn = self._clickhouse_connections[self.alias]
                if conn_params == params:
                    return conn
            conn = DriverConnection(**conn_params)
            self._clickhouse_connections[self.alias] = (conn_params, conn)
        return conn
