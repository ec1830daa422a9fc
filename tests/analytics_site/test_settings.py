"""Settings from the environment: the secret key, hosts, and the production security settings
(`manage.py check --deploy` in a fresh process, as an operator would run it)."""

import os
import re
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from django.test import Client, override_settings

pytestmark = pytest.mark.slow


def manage(tmp_path, *args, **env):
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECURE_", "ALLOWED_HOSTS"))},
        "ANALYTICS_VAR_DIR": str(tmp_path / "var"),
        "CLICKHOUSE_DATA_DIR": str(tmp_path / "clickhouse"),
        **env,
    }
    return subprocess.run([sys.executable, "manage.py", *args], env=environment, cwd=settings.BASE_DIR,
                          capture_output=True, text=True, timeout=120)


PRODUCTION = {"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50)}


def test_debug_off_without_a_secret_key_stops_with_a_clear_error(tmp_path):
    done = manage(tmp_path, "check", DJANGO_DEBUG="false")
    assert done.returncode != 0
    assert "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off" in done.stderr.splitlines()[-1]


def test_manage_py_check_is_clean(tmp_path):
    for env in ({"DJANGO_DEBUG": "true"}, PRODUCTION):
        done = manage(tmp_path, "check", **env)
        assert done.returncode == 0 and "System check identified no issues" in done.stdout, done


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    done = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION, DJANGO_TLS="true",
                  SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto", ALLOWED_HOSTS="analytics.example.com")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_without_tls_check_deploy_names_only_the_https_settings(tmp_path):
    """The plain-HTTP default (docker-compose, curl localhost:8006): what stays off is HTTPS only."""
    done = manage(tmp_path, "check", "--deploy", **PRODUCTION)
    warnings = sorted(re.findall(r"\((security\.W\d+)\)", done.stderr))
    assert warnings == ["security.W004", "security.W008", "security.W012", "security.W016"], done.stderr


def test_allowed_hosts_come_from_the_environment(tmp_path):
    done = manage(tmp_path, "shell", "-c", "from django.conf import settings; print(settings.ALLOWED_HOSTS)",
                  **PRODUCTION, ALLOWED_HOSTS="analytics.example.com, api.example.com")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "['analytics.example.com', 'api.example.com']"


@pytest.mark.parametrize("secure", [True, False])
def test_behind_tls_http_is_redirected_except_probes_and_hsts_is_sent(ch, api_key, secure):
    with override_settings(SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=31536000, SECURE_HSTS_INCLUDE_SUBDOMAINS=True,
                           SECURE_HSTS_PRELOAD=True):
        client = Client(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
        trends = client.get("/api/v1/analytics/trends", secure=secure)
        health = client.get("/health", secure=secure)
    assert health.status_code == 200  # probes speak plain HTTP inside the network
    if secure:
        assert trends.status_code == 200
        assert trends["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    else:
        assert trends.status_code == 301 and trends["Location"].startswith("https://")
