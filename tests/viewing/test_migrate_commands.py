"""`migrate` and `sqlmigrate` on a fresh data directory, in a process of their own as an
operator runs them: sqlmigrate prints the ClickHouse DDL before any database exists, and
migrate lists under each database only the migrations that create something there."""

import os
import re
import subprocess
import sys

import pytest
from django.conf import settings

pytestmark = [pytest.mark.slow, pytest.mark.embedded]


def manage(tmp_path, *args):
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "a-secret-key-for-this-test-only",
        "ANALYTICS_VAR_DIR": str(tmp_path / "var"),
        "CLICKHOUSE_DATA_DIR": str(tmp_path / "clickhouse"),
    }
    return subprocess.run([sys.executable, "manage.py", *args], env=env, cwd=settings.BASE_DIR,
                          capture_output=True, text=True, timeout=180)


def test_sqlmigrate_prints_the_clickhouse_ddl_on_a_fresh_data_directory(tmp_path):
    done = manage(tmp_path, "sqlmigrate", "viewing", "0001", "--database", "clickhouse")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert re.search(r"CREATE TABLE (IF NOT EXISTS )?`?viewing_events`?", done.stdout), done.stdout[:2000]
    assert "MATERIALIZED VIEW" in done.stdout
    # Printing the SQL created nothing: migrate still has everything to do.
    migrated = manage(tmp_path, "migrate", "--database", "clickhouse")
    assert migrated.returncode == 0, migrated.stderr
    assert "Applying viewing.0001_initial... OK" in migrated.stdout


def test_sqlmigrate_backwards_and_for_the_default_database(tmp_path):
    backwards = manage(tmp_path, "sqlmigrate", "viewing", "0001", "--database", "clickhouse", "--backwards")
    assert backwards.returncode == 0 and "DROP" in backwards.stdout, backwards.stderr
    default = manage(tmp_path, "sqlmigrate", "auth", "0001")
    assert default.returncode == 0 and 'CREATE TABLE "auth_permission"' in default.stdout, default.stderr


def test_migrate_lists_under_each_database_only_what_it_creates_there(tmp_path):
    done = manage(tmp_path, "migrate")
    assert done.returncode == 0, done.stderr
    default, clickhouse = done.stdout.split("Database clickhouse:")
    applied_default = set(re.findall(r"Applying (\w+)\.", default))
    applied_clickhouse = set(re.findall(r"Applying (\w+)\.", clickhouse))
    assert applied_clickhouse == {"viewing"}
    assert "viewing" not in applied_default and {"auth", "admin", "access"} <= applied_default
    # What Django only records (it runs every app's migrations on every database) is said once.
    assert re.search(r"\d+ migrations of access, admin, auth, contenttypes, .*only recorded as applied "
                     r"\(their tables are in another database; nothing was created in clickhouse\)", clickhouse)
    assert re.search(r"migrations? of viewing only recorded as applied .*nothing was created in default", default)
    again = manage(tmp_path, "migrate")
    assert again.returncode == 0 and "only recorded" not in again.stdout and "No migrations to apply" in again.stdout
