"""analytics_site.environment: variables parsed by django-environ with the service's rules,
the .env file (environment first), and gunicorn's config reading only what it needs."""

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from analytics_site.environment import Environment


def environment(**variables):
    env = Environment()
    env.ENVIRON = variables  # an instance's own mapping instead of os.environ
    return env


def test_empty_and_missing_are_the_default_and_blanks_are_ignored():
    env = environment(EMPTY="", BLANK="   ", PADDED="  8007 ")
    assert env("EMPTY", default="d") == "d" and env("MISSING", default=None) is None
    assert env.int("BLANK", default=5) == 5
    assert env.int("PADDED", default=5) == 8007


def test_required_variable_names_itself():
    with pytest.raises(ImproperlyConfigured, match="Set the NEEDED environment variable"):
        environment()("NEEDED")


@pytest.mark.parametrize("value, parsed", [("true", True), ("On", True), ("1", True), ("no", False), ("0", False)])
def test_booleans(value, parsed):
    assert environment(FLAG=value).bool("FLAG", default=not parsed) is parsed


@pytest.mark.parametrize("cast, value, message", [
    ("bool", "maybe", "FLAG must be true or false, got 'maybe'."),
    ("int", "8k", "FLAG must be an integer, got '8k'."),
    ("float", "fast", "FLAG must be a number, got 'fast'."),
])
def test_a_value_that_does_not_parse_is_an_error_naming_the_variable(cast, value, message):
    with pytest.raises(ImproperlyConfigured) as error:
        getattr(environment(FLAG=value), cast)("FLAG", default=None)
    assert str(error.value) == message


def test_lists_and_database_urls():
    env = environment(TOPICS=" a.start, a.stop ,,", DATABASE_URL="sqlite:////tmp/x.sqlite3")
    assert env.list("TOPICS", default=[]) == ["a.start", "a.stop"]
    assert env.list("OTHER", default=["x"]) == ["x"]
    db = env.db_url("DATABASE_URL")
    assert db["ENGINE"] == "django.db.backends.sqlite3" and db["NAME"] == "/tmp/x.sqlite3"


def run_python(code, tmp_path, **variables):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "PORT", "BIND_ADDRESS", "ENABLE_KAFKA"))}
    env.update(ANALYTICS_VAR_DIR=str(tmp_path / "var"), **variables)
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=settings.BASE_DIR,
                          capture_output=True, text=True, timeout=120)


SHOW_SETTINGS = ("import django; django.setup(); from django.conf import settings as s; "
                 "print(s.DEBUG, s.SECRET_KEY, s.ENABLE_KAFKA, s.KAFKA_BATCH_SIZE)")


def test_the_env_file_fills_in_what_the_environment_does_not_set(tmp_path):
    # A copy of .env.example keeps its notes after the values: they are comments.
    (tmp_path / "local.env").write_text(
        "# written by make run\n"
        "DJANGO_DEBUG=true                 # development mode\n"
        "DJANGO_SECRET_KEY=from-the-file\n"
        "ENABLE_KAFKA=false\n"
        "KAFKA_BATCH_SIZE=500\n"
    )
    done = run_python(SHOW_SETTINGS, tmp_path, DJANGO_SETTINGS_MODULE="analytics_site.settings",
                      ANALYTICS_ENV_FILE=str(tmp_path / "local.env"), KAFKA_BATCH_SIZE="700")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "from-the-file", "False", "700"]  # the environment wins


def test_without_an_env_file_nothing_is_read(tmp_path):
    done = run_python(SHOW_SETTINGS, tmp_path, DJANGO_SETTINGS_MODULE="analytics_site.settings",
                      ANALYTICS_ENV_FILE=str(tmp_path / "missing.env"), DJANGO_SECRET_KEY="k")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "k", "True", "20000"]


def test_gunicorn_config_reads_only_its_variables(tmp_path):
    """The master imports the config: no Django settings, so no secret-key check (DEBUG off,
    no key here) and no directories made."""
    code = ("import sys; from analytics_site import gunicorn_conf as g; "
            "print(g.bind, g.workers, g.threads, g.accesslog, 'analytics_site.settings' in sys.modules)")
    done = run_python(code, tmp_path, DJANGO_DEBUG="false", ANALYTICS_ENV_FILE="", PORT="8123", GUNICORN_THREADS="4")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["127.0.0.1:8123", "1", "4", "None", "False"]
    assert not (tmp_path / "var").exists()
    wide = run_python(code, tmp_path, ANALYTICS_ENV_FILE="", BIND_ADDRESS="0.0.0.0")
    assert wide.stdout.split()[0] == "0.0.0.0:8006"
    bad = run_python(code, tmp_path, ANALYTICS_ENV_FILE="", PORT="http")
    assert bad.returncode != 0 and "PORT must be an integer, got 'http'." in bad.stderr


def test_a_wider_bind_in_development_accepts_any_host_and_production_keeps_its_list(tmp_path):
    code = "import django; django.setup(); from django.conf import settings as s; print(s.ALLOWED_HOSTS)"
    base = dict(DJANGO_SETTINGS_MODULE="analytics_site.settings", ANALYTICS_ENV_FILE="", DJANGO_SECRET_KEY="k")
    dev = run_python(code, tmp_path, **base, DJANGO_DEBUG="true", BIND_ADDRESS="0.0.0.0")
    local = run_python(code, tmp_path, **base, DJANGO_DEBUG="true")
    prod = run_python(code, tmp_path, **base, DJANGO_DEBUG="false", BIND_ADDRESS="0.0.0.0")
    assert dev.stdout.strip() == "['*']", dev.stderr
    assert local.stdout.strip() == prod.stdout.strip() == "['localhost', '127.0.0.1', '[::1]']"


def test_every_variable_of_env_example_is_explained_in_the_operations_docs():
    """.env.example lists every setting with its default; docs/operations.md explains each."""
    import re

    root = settings.BASE_DIR
    listed = set(re.findall(r"^([A-Z0-9_]+)=", (root / ".env.example").read_text(), re.MULTILINE))
    explained = set(re.findall(r"`([A-Z0-9_]+)`", (root / "docs" / "operations.md").read_text()))
    assert listed and listed - explained == set()
