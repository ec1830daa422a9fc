"""Chooses the ClickHouse the suite runs on, before Django reads its settings (pytest -p).

- CLICKHOUSE_HOST set: that server (the tests create and drop their own test database).
- ANALYTICS_TEST_DOCKER=1: testcontainers starts a ClickHouse server (needs Docker).
- Otherwise: the embedded engine in a temporary data directory of this run, so the suite
  never touches var/ and runs while `make run` serves.
The tests are the same on all three.
"""

import atexit
import os
import shutil
import tempfile

_run_dir = tempfile.mkdtemp(prefix="analytics-test-")
atexit.register(shutil.rmtree, _run_dir, ignore_errors=True)
# Every temporary file of this run — export pipe folders among them, and those of the servers
# and commands the tests start — under the run's own directory: a test that looks for
# leftovers sees this run's alone, not those of another pytest-xdist worker.
_tmp_dir = os.path.join(_run_dir, "tmp")
os.makedirs(_tmp_dir)
os.environ["TMPDIR"] = _tmp_dir
tempfile.tempdir = _tmp_dir

# The suite sees only its own environment, never a developer's .env (make run writes one).
os.environ["ANALYTICS_ENV_FILE"] = ""
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")
os.environ["ANALYTICS_VAR_DIR"] = os.path.join(_run_dir, "var")
os.environ.setdefault("ENABLE_KAFKA", "false")
# The commands the tests start run Django's checks; where the machine's disk is ext4 without a
# journal each would print viewing.W001 beside what the test reads. Its own test unsets this
# (tests/analytics_site/test_filesystem.py).
os.environ["SILENCED_SYSTEM_CHECKS"] = "viewing.W001"

if os.environ.get("ANALYTICS_TEST_DOCKER") == "1" and not os.environ.get("CLICKHOUSE_HOST"):
    from testcontainers.clickhouse import ClickHouseContainer  # pip install testcontainers

    _container = ClickHouseContainer("clickhouse/clickhouse-server:25.8")
    _container.start()
    atexit.register(_container.stop)
    os.environ["CLICKHOUSE_HOST"] = _container.get_container_host_ip()
    os.environ["CLICKHOUSE_PORT"] = str(_container.get_exposed_port(9000))
    os.environ["CLICKHOUSE_USER"] = _container.username
    os.environ["CLICKHOUSE_PASSWORD"] = _container.password

if not os.environ.get("CLICKHOUSE_HOST"):
    os.environ["CLICKHOUSE_DATA_DIR"] = os.path.join(_run_dir, "clickhouse")

EMBEDDED = not os.environ.get("CLICKHOUSE_HOST")
