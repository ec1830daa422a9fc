"""The embedded backend's reliance on django-clickhouse-backend internals
(analytics_site/chdb_backend/upstream.py): pinned, fingerprinted, and working."""

import hashlib
import inspect
import re
import threading
from pathlib import Path

import clickhouse_backend
import pytest
from django.conf import settings
from django.db import connections

from analytics_site.chdb_backend import upstream
from analytics_site.chdb_backend.transport import EmbeddedConnection

pytestmark = pytest.mark.embedded

# sha256 (first 16 hex digits) of the source of each piece of the library upstream.py relies
# on, as of the pinned version. A mismatch means an upgrade changed that code: re-read it,
# adapt upstream.py (or drop the override if the library grew a hook), then record the new
# digest here.
FINGERPRINTS = {
    "clickhouse_backend.backend.base.DatabaseWrapper.get_new_connection": "4944ec440ee464bf",
    "clickhouse_backend.driver.pool.ClickhousePool.__init__": "de67aa854431e8d6",
    "clickhouse_backend.driver.pool.ClickhousePool._connect": "5054a08bc24e97b3",
    "clickhouse_backend.driver.pool.ClickhousePool.pull": "76b00d3c82246720",
    "clickhouse_backend.driver.pool.ClickhousePool.push": "17f1a4123454d6bd",
    "clickhouse_backend.driver.pool.ClickhousePool.cleanup": "300806cd9a32a9c6",
    "clickhouse_backend.driver.connection.Connection.__init__": "93786bf75dc90bc6",
    "clickhouse_backend.driver.connection.Connection._make_client": "8de335095168866e",
    "clickhouse_backend.driver.connection.Connection.close": "66809528084b97e4",
    "clickhouse_backend.driver.connection.Cursor.close": "9692093e884f8d55",
}


def fingerprint(function):
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]


def test_the_library_version_is_the_pinned_one():
    requirements = (Path(settings.BASE_DIR) / "requirements.txt").read_text()
    pinned = re.search(r"^django-clickhouse-backend==(\S+)$", requirements, re.MULTILINE)
    assert pinned, "requirements.txt must pin django-clickhouse-backend to one version"
    assert clickhouse_backend.__version__ == pinned.group(1)


def test_the_library_code_relied_on_is_unchanged():
    seen = {f"{f.__module__}.{f.__qualname__}": fingerprint(f) for f in upstream.RELIED_ON}
    # Every reliance is recorded, and nothing recorded is stale.
    assert sorted(seen) == sorted(FINGERPRINTS)
    changed = [name for name, digest in seen.items() if FINGERPRINTS[name] != digest]
    assert not changed, (
        f"django-clickhouse-backend {clickhouse_backend.__version__} changed {changed}: "
        "analytics_site/chdb_backend/upstream.py relies on that code; re-check it"
    )


def test_a_changed_method_changes_its_fingerprint():
    # The guard above can fail: an edit of one character of a relied-on method shows.
    source = inspect.getsource(upstream.backend_pool.ClickhousePool._connect)
    assert hashlib.sha256(source.replace("_rused", "_rUsed").encode()).hexdigest()[:16] != (
        FINGERPRINTS["clickhouse_backend.driver.pool.ClickhousePool._connect"]
    )


def test_the_pool_hands_out_embedded_clients_and_takes_them_back():
    pool = upstream.Pool(host="localhost", path=settings.CLICKHOUSE_DATA_DIR, connections_min=2, connections_max=3)
    try:
        assert len(pool._pool) == 2
        clients = [pool.pull() for _ in range(3)]  # the third is made on demand, under its key
        assert all(isinstance(c.connection, EmbeddedConnection) for c in clients)
        assert [c.execute("SELECT 1") for c in clients] == [[(1,)]] * 3
        with pytest.raises(Exception, match="too many connections"):
            pool.pull()
        for c in clients:
            pool.push(c)
        assert len(pool._pool) == 2 and not pool._used and not pool._rused
    finally:
        pool.cleanup()
    assert all(not c.connection.connected for c in clients)


def test_django_threads_share_one_driver_connection(ch):
    seen = []

    def work():
        connection = connections["clickhouse"]
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        seen.append(connection.connection)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    ch.ensure_connection()
    assert len(seen) == 4
    assert all(conn is ch.connection for conn in seen)
    assert isinstance(ch.connection, upstream.DriverConnection)
    assert isinstance(ch.connection.pool, upstream.Pool)
