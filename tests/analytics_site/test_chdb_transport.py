"""The embedded-engine transport under clickhouse-driver: values, parameters, inserts,
settings, errors and threads."""

import os
import threading
import uuid
from datetime import datetime

import pytest
from clickhouse_driver import errors
from django.conf import settings
from django.db import DatabaseError, connections

from analytics_site.chdb_backend.transport import EmbeddedClient

pytestmark = pytest.mark.embedded

DB = "transport_test"


@pytest.fixture
def client():
    # chdb opens one data directory per process: the one Django's connection uses.
    EmbeddedClient(path=settings.CLICKHOUSE_DATA_DIR).execute(f"CREATE DATABASE IF NOT EXISTS {DB}")
    c = EmbeddedClient(path=settings.CLICKHOUSE_DATA_DIR, database=DB)
    c.execute("DROP TABLE IF EXISTS t")
    yield c
    c.disconnect()


def test_values_round_trip_as_a_server_returns_them(client):
    u = uuid.UUID("e3e70682-c209-4cac-629f-6fbed82c07cd")
    rows = client.execute(
        "SELECT toUUID(%(u)s), toDateTime('2026-11-28 23:59:59', 'UTC'), "
        "CAST(NULL AS Nullable(UUID)), CAST(%(u)s AS Nullable(UUID)), map('a', 1), "
        "'ünï ✓', toLowCardinality('start'), toUInt32(4294967295), [1, 2]",
        {"u": str(u)},
    )
    assert rows == [
        (u, datetime(2026, 11, 28, 23, 59, 59), None, u, {"a": 1}, "ünï ✓", "start", 4294967295, [1, 2])
    ]


def test_parameters_are_escaped_not_executed(client):
    hostile = "x'); DROP TABLE t; --"
    assert client.execute("SELECT %(s)s", {"s": hostile}) == [(hostile,)]


def test_many_blocks_come_back_whole(client):
    rows = client.execute("SELECT number FROM numbers(200000)", settings={"max_block_size": 1000})
    assert [r[0] for r in rows] == list(range(200000))


def test_insert_streams_native_blocks(client):
    client.execute(
        "CREATE TABLE t (id UUID, n Nullable(UUID), s LowCardinality(String), d DateTime('UTC')) "
        "ENGINE = MergeTree ORDER BY id"
    )
    rows = [(uuid.uuid4(), None if i % 2 else uuid.uuid4(), f"s{i % 3}", datetime(2026, 1, 1, 0, 0, i % 60)) for i in range(5000)]
    assert client.execute("INSERT INTO t (id, n, s, d) VALUES", rows, settings={"insert_block_size": 1000}) == 5000
    assert sorted(client.execute("SELECT id, n, s, d FROM t")) == sorted(rows)


def test_insert_into_subset_of_columns_and_with_settings(client):
    client.execute("CREATE TABLE t (a UInt8, b String DEFAULT 'dflt') ENGINE = MergeTree ORDER BY a")
    client.execute("INSERT INTO t (a) SETTINGS async_insert = 0 VALUES", [(1,), (2,)])
    assert client.execute("SELECT a, b FROM t ORDER BY a") == [(1, "dflt"), (2, "dflt")]


def test_insert_select_into_a_long_table_name_runs_as_a_query_at_once(client):
    """INSERT ... SELECT is not the driver's VALUES insert: recognizing that must not take time
    exponential in the table name's length (it once took seconds for 21 letters)."""
    import time

    name = "t_" + "x" * 22  # 24 letters: ~20 s with the old pattern
    client.execute(f"CREATE TABLE {name} (a UInt8) ENGINE = MergeTree ORDER BY a")
    started = time.monotonic()
    client.execute(f"INSERT INTO {name} (a) SELECT number FROM numbers(3)")
    assert time.monotonic() - started < 1
    assert client.execute(f"SELECT count() FROM {name}") == [(3,)]
    client.execute(f"DROP TABLE {name}")


def test_errors_are_clickhouse_driver_server_exceptions(client):
    with pytest.raises(errors.ServerException) as e:
        client.execute("SELECT * FROM no_such_table")
    assert e.value.code == 60
    client.execute("CREATE TABLE t (a UInt8) ENGINE = MergeTree ORDER BY a")
    with pytest.raises(errors.ServerException) as e:
        client.execute("INSERT INTO t (a, nope) VALUES", [(1, 2)])
    assert e.value.code == 47
    with pytest.raises(errors.ServerException) as e:
        client.execute("SELECT throwIf(1, 'boom')")
    assert "boom" in e.value.message
    # The connection stays usable after each error.
    assert client.execute("SELECT count() FROM t") == [(0,)]


def test_rows_rejected_at_commit_raise_the_engines_error(client):
    # chdb's streaming insert reported such rows as written and stored nothing; a server
    # answers with the error, and so must the embedded engine.
    client.execute("CREATE TABLE t (x UInt32, CONSTRAINT small CHECK x < 10) ENGINE = MergeTree ORDER BY x")
    with pytest.raises(errors.ServerException) as e:
        client.execute("INSERT INTO t (x) VALUES", [(1,), (50,)])
    assert e.value.code == 469  # VIOLATED_CONSTRAINT
    assert "Constraint `small`" in e.value.message
    assert client.execute("SELECT count() FROM t") == [(0,)]
    # Over several blocks, with settings: still one INSERT, still all or nothing.
    rows = [(i % 10,) for i in range(2500)] + [(10,)]
    with pytest.raises(errors.ServerException) as e:
        client.execute("INSERT INTO t (x) SETTINGS async_insert = 0 VALUES", rows, settings={"insert_block_size": 1000})
    assert e.value.code == 469
    assert client.execute("SELECT count() FROM t") == [(0,)]
    assert client.execute("INSERT INTO t (x) VALUES", [(1,), (2,)]) == 2
    assert client.execute("SELECT sum(x) FROM t") == [(3,)]


@pytest.mark.django_db(databases=["default", "clickhouse"])
def test_the_django_path_raises_the_engines_error_too():
    with connections["clickhouse"].cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS transport_check")
        cursor.execute(
            "CREATE TABLE transport_check (x UInt32, CONSTRAINT small CHECK x < 10) ENGINE = MergeTree ORDER BY x"
        )
        try:
            with pytest.raises(DatabaseError) as e:
                cursor.executemany("INSERT INTO transport_check (x) VALUES", [(1,), (50,)])
            cause = e.value  # Django's error <- dbapi's <- the driver's ServerException
            while cause is not None and not isinstance(cause, errors.ServerException):
                cause = cause.__cause__ or cause.__context__
            assert cause is not None and cause.code == 469
            cursor.execute("SELECT count() FROM transport_check")
            assert cursor.fetchall() == [(0,)]
        finally:
            cursor.execute("DROP TABLE transport_check")


def _insert_files():
    """The in-memory files of inserts this process holds open."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:chdb-insert"):
                found.append(fd)
        except OSError:  # closed meanwhile (listdir's own descriptor)
            pass
    return found


def test_inserts_leave_no_file_descriptor_behind(client):
    client.execute("CREATE TABLE t (x UInt32, CONSTRAINT small CHECK x < 10) ENGINE = MergeTree ORDER BY x")
    for _ in range(20):
        assert client.execute("INSERT INTO t (x) VALUES", [(1,)]) == 1
        assert client.execute("INSERT INTO t (x) VALUES", []) == 0
        with pytest.raises(errors.ServerException):
            client.execute("INSERT INTO t (x) VALUES", [(50,)])
    assert _insert_files() == []
    assert client.execute("SELECT count() FROM t") == [(20,)]


def test_settings_apply_per_query_and_revert(client):
    assert client.execute("SELECT getSetting('max_block_size')", settings={"max_block_size": 123}) == [(123,)]
    assert client.execute("SELECT getSetting('max_block_size')") == [(65409,)]  # the default again
    # chdb's own session default is async_insert=1; an explicit setting wins.
    assert client.execute("SELECT getSetting('async_insert')", settings={"async_insert": 0}) == [(False,)]


def test_a_missing_database_is_an_error_not_created(client):
    missing = EmbeddedClient(path=settings.CLICKHOUSE_DATA_DIR, database="never_created")
    with pytest.raises(errors.ServerException) as e:
        missing.execute("SELECT 1")
    assert e.value.code == 81  # UNKNOWN_DATABASE, as a server answers
    assert client.execute("SELECT count() FROM system.databases WHERE name = 'never_created'") == [(0,)]


def test_threads_with_their_own_clients_run_in_parallel():
    results, failures = [], []

    def work(i):
        c = EmbeddedClient(path=settings.CLICKHOUSE_DATA_DIR, database=DB)
        try:
            results.append(c.execute("SELECT sum(number) FROM numbers(%(n)s)", {"n": 100000 + i})[0][0])
        except Exception as e:  # collected and asserted below
            failures.append(e)
        finally:
            c.disconnect()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not failures
    assert sorted(results) == sorted(sum(range(100000 + i)) for i in range(8))


def test_an_error_quoting_bytes_that_are_not_utf8_is_the_engines_refusal(client):
    """chdb cannot turn such a message into text (UnicodeDecodeError): it is still a server
    error, as a server would send it, not a crash of the caller."""
    fd = os.memfd_create("bad")
    try:
        os.write(fd, b'{"a": \xff\xfe}')
        with pytest.raises(errors.ServerException, match="not UTF-8"):
            client.execute(f"SELECT * FROM file('/proc/self/fd/{fd}', 'JSONEachRow', 'a String')")
        assert client.execute("SELECT 1") == [(1,)]  # the connection still works
    finally:
        os.close(fd)
