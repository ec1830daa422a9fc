"""manage.py in a fresh process, as an operator runs it: a missing secret key, a malformed
setting, a data directory held by another process and an unreachable ClickHouse server each
end in one line naming the cause and the fix, a non-zero exit and no traceback."""

import os
import socket
import subprocess
import sys

import pytest
from django.conf import settings

pytestmark = pytest.mark.slow


def manage(tmp_path, *args, **env):
    environment = {
        **{k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "CLICKHOUSE_", "ALLOWED_HOSTS"))},
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "a-secret-key-for-this-test-only",
        "ANALYTICS_VAR_DIR": str(tmp_path / "var"),
        "CLICKHOUSE_DATA_DIR": str(tmp_path / "clickhouse"),
        **env,
    }
    environment = {k: v for k, v in environment.items() if v is not None}
    return subprocess.run([sys.executable, "manage.py", *args], env=environment, cwd=settings.BASE_DIR,
                          capture_output=True, text=True, timeout=180)


def one_line_error(done):
    """The stderr of a failed command, checked to be a single CommandError line."""
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("CommandError: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", [["check"], ["createsuperuser", "--noinput"], ["migrate"], ["check", "--help"]])
def test_without_a_secret_key_one_line_names_it(tmp_path, command):
    line = one_line_error(manage(tmp_path, *command, DJANGO_SECRET_KEY=None))
    assert "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off" in line
    assert "make run" in line  # and how to get one for development


def test_traceback_option_still_shows_the_traceback(tmp_path):
    done = manage(tmp_path, "check", "--traceback", DJANGO_SECRET_KEY=None)
    assert done.returncode != 0
    assert "Traceback" in done.stderr and "ImproperlyConfigured" in done.stderr


def test_a_malformed_setting_is_one_line_naming_it(tmp_path):
    line = one_line_error(manage(tmp_path, "check", KAFKA_BATCH_SIZE="ten thousand"))
    assert line == "CommandError: KAFKA_BATCH_SIZE must be an integer, got 'ten thousand'."
    line = one_line_error(manage(tmp_path, "check", ENABLE_KAFKA="maybe"))
    assert line == "CommandError: ENABLE_KAFKA must be true or false, got 'maybe'."


@pytest.mark.embedded
@pytest.mark.parametrize("command", [["migrate"], ["consume_stream", "--exit-on-idle", "1"]])
def test_a_held_data_directory_is_one_line_naming_it(ch, tmp_path, command):
    """This test process holds the suite's data directory (the `ch` fixture opened it)."""
    line = one_line_error(manage(tmp_path, *command, CLICKHOUSE_DATA_DIR=settings.CLICKHOUSE_DATA_DIR))
    assert f"The embedded ClickHouse data directory {settings.CLICKHOUSE_DATA_DIR} is in use by another process (pid {os.getpid()})" in line
    assert "CLICKHOUSE_DATA_DIR" in line


@pytest.mark.embedded
def test_generate_events_on_a_held_directory_without_a_server_says_both(ch, tmp_path):
    """With the directory held, generate_events turns to the server (tests/viewing/
    test_generate_events.py); when none answers, one line says so and how to start one."""
    url = f"http://127.0.0.1:{free_port()}"
    line = one_line_error(manage(tmp_path, "generate_events", "--events", "10", "--url", url, "--api-key", "k",
                                 "--verbosity", "0", CLICKHOUSE_DATA_DIR=settings.CLICKHOUSE_DATA_DIR))
    assert f"{settings.CLICKHOUSE_DATA_DIR} is in use by another process" in line
    assert f"Sending the events to a server instead failed: no answer from {url}" in line
    assert "make run" in line and "--url" in line


def test_an_unreachable_clickhouse_server_is_one_line_naming_it(tmp_path):
    port = free_port()  # nothing listens there
    for command in (["migrate"], ["generate_events", "--events", "10"]):
        line = one_line_error(manage(tmp_path, *command, CLICKHOUSE_HOST="127.0.0.1", CLICKHOUSE_PORT=str(port),
                                     CLICKHOUSE_CONNECT_TIMEOUT="2"))
        assert f"The ClickHouse server 127.0.0.1:{port} does not answer" in line
        assert "CLICKHOUSE_HOST" in line


@pytest.mark.embedded
def test_a_command_before_migrate_says_to_run_migrate(tmp_path):
    line = one_line_error(manage(tmp_path, "generate_events", "--events", "10"))
    assert "run `.venv/bin/python manage.py migrate` first" in line


def gunicorn(tmp_path, **env):
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CLICKHOUSE_"))},
        "ANALYTICS_VAR_DIR": str(tmp_path / "var"), "CLICKHOUSE_DATA_DIR": str(tmp_path / "clickhouse"),
        "PORT": str(free_port()), "ENABLE_KAFKA": "false", **env,
    }
    binary = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    return subprocess.run([binary, "-c", "python:analytics_site.gunicorn_conf", "analytics_site.wsgi"],
                          env=environment, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120)


def test_the_server_without_a_secret_key_stops_with_one_line(tmp_path):
    done = gunicorn(tmp_path, DJANGO_DEBUG="false")
    assert done.returncode != 0
    assert "Cannot start: DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off" in done.stderr
    assert "Traceback" not in done.stderr and "Worker failed to boot" in done.stderr


def test_the_server_with_a_malformed_port_stops_with_one_line(tmp_path):
    done = gunicorn(tmp_path, DJANGO_DEBUG="true", PORT="http")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == ["Error: PORT must be an integer, got 'http'."]
