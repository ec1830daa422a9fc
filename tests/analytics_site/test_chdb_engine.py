"""The embedded engine of this process (analytics_site/chdb_backend/engine.py): its start-up
settings, and one process per data directory, said clearly to whoever else tries."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from clickhouse_driver import errors
from django.conf import settings

from analytics_site.chdb_backend import engine
from analytics_site.chdb_backend.transport import EmbeddedClient

pytestmark = pytest.mark.embedded


@pytest.fixture
def client():
    c = EmbeddedClient(path=settings.CLICKHOUSE_DATA_DIR)
    yield c
    c.disconnect()


def test_engine_starts_with_a_capped_mark_cache(client):
    rows = client.execute("SELECT value FROM system.server_settings WHERE name = 'mark_cache_size'")
    assert rows == [(str(512 * 1024 * 1024),)]


def test_a_second_process_on_the_directory_gets_a_clear_error(client):
    client.execute("SELECT 1")  # this process holds the directory
    script = textwrap.dedent(
        f"""
        from analytics_site.chdb_backend.engine import EngineLocked
        from analytics_site.chdb_backend.transport import EmbeddedClient
        try:
            EmbeddedClient(path={settings.CLICKHOUSE_DATA_DIR!r}).execute("SELECT 1")
        except EngineLocked as e:
            print("LOCKED:", e)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "LOCKED:" in out.stdout, out.stderr[-2000:]
    assert settings.CLICKHOUSE_DATA_DIR in out.stdout
    assert "in use by another process" in out.stdout


def test_manage_py_on_a_locked_directory_says_so_without_a_traceback(client):
    client.execute("SELECT 1")
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SECRET_KEY": "x",
        "CLICKHOUSE_DATA_DIR": settings.CLICKHOUSE_DATA_DIR,
        "ANALYTICS_VAR_DIR": str(settings.VAR_DIR),
    }
    out = subprocess.run(
        [sys.executable, "manage.py", "migrate"], capture_output=True, text=True, timeout=120,
        env=env, cwd=settings.BASE_DIR,
    )
    assert out.returncode == 1
    assert f"CommandError: The embedded ClickHouse data directory {settings.CLICKHOUSE_DATA_DIR} is in use" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_the_server_stops_at_start_on_a_locked_directory(client):
    client.execute("SELECT 1")  # this process holds the directory
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SECRET_KEY": "x",
        "ENABLE_KAFKA": "false",
        "PORT": "0",
        "CLICKHOUSE_DATA_DIR": settings.CLICKHOUSE_DATA_DIR,
        "ANALYTICS_VAR_DIR": str(settings.VAR_DIR),
    }
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    out = subprocess.run(
        [gunicorn, "-c", "python:analytics_site.gunicorn_conf", "analytics_site.wsgi"],
        capture_output=True, text=True, timeout=120, env=env, cwd=settings.BASE_DIR,
    )
    assert out.returncode == 3, out.stderr[-2000:]
    assert f"The embedded ClickHouse data directory {settings.CLICKHOUSE_DATA_DIR} is in use" in out.stderr
    assert "Worker failed to boot" in out.stderr


def test_the_process_runs_one_data_directory(client, tmp_path):
    client.execute("SELECT 1")
    assert engine.engine_path() == os.path.abspath(settings.CLICKHOUSE_DATA_DIR)
    with pytest.raises(errors.Error, match="cannot open a second data directory"):
        engine.open_engine(str(tmp_path))
    assert not os.path.exists(tmp_path / "status")  # nothing was started there


def test_the_lock_holder_is_this_process(client):
    client.execute("SELECT 1")
    assert engine.lock_holder(settings.CLICKHOUSE_DATA_DIR) == str(os.getpid())


def test_no_lock_holder_where_no_engine_ran(tmp_path):
    assert engine.lock_holder(str(tmp_path)) is None


def test_a_locked_directory_names_its_holder(client):
    client.execute("SELECT 1")
    e = engine.EngineLocked(settings.CLICKHOUSE_DATA_DIR)
    assert str(e).startswith(f"The embedded ClickHouse data directory {settings.CLICKHOUSE_DATA_DIR} is in use by another process (pid {os.getpid()})")
    assert e.code == 76


def test_a_held_directory_is_seen_before_the_engine_opens_it(client, tmp_path):
    client.execute("SELECT 1")  # this process's engine holds the directory (a flock on status)
    probe = (
        "from analytics_site.chdb_backend.engine import held_elsewhere; "
        f"print(held_elsewhere({settings.CLICKHOUSE_DATA_DIR!r}), held_elsewhere({str(tmp_path)!r}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=settings.BASE_DIR)
    assert out.stdout.split() == ["True", "False"], out.stderr[-2000:]
    (tmp_path / "status").write_text("PID: 1\n")  # left by an engine that has exited: not held
    assert engine.held_elsewhere(str(tmp_path)) is False
