"""Deployment files checked without a Docker engine: docker-compose.yml, Dockerfile and
gunicorn settings agree with the settings module, .env.example and the management commands."""

import re
from pathlib import Path

import yaml
from django.conf import settings
from django.core.management import get_commands

ROOT = Path(settings.BASE_DIR)
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = [n for n, s in SERVICES.items() if s.get("image") == "viewing-analytics:latest"]


def settings_variables():
    """Every environment variable the Python settings read."""
    names = set()
    for path in (ROOT / "analytics_site").glob("*.py"):
        names |= set(re.findall(r"\benv(?:\.\w+)?\(\s*[\"']([A-Z0-9_]+)[\"']", path.read_text()))
    return names


def env_example_variables():
    return set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))


def test_every_setting_is_documented_in_env_example():
    assert settings_variables() - env_example_variables() == set()


def test_app_services_use_only_real_settings():
    known = settings_variables()
    for name in APP_SERVICES:
        unknown = set(SERVICES[name]["environment"]) - known
        assert not unknown, f"{name} sets variables nothing reads: {unknown}"


def test_app_commands_exist():
    commands = get_commands()
    for name in APP_SERVICES:
        command = SERVICES[name]["command"]
        if command[:2] == ["python", "manage.py"]:
            assert command[2] in commands, f"{name}: no management command {command[2]}"
        else:
            assert command == ["gunicorn", "-c", "python:analytics_site.gunicorn_conf", "analytics_site.wsgi"]


def test_api_listens_on_8006_and_waits_for_migrate():
    assert SERVICES["api"]["ports"] == ["8006:8006"]
    assert SERVICES["api"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert SERVICES["consumer"]["depends_on"]["kafka"] == {"condition": "service_healthy"}
    assert SERVICES["migrate"]["depends_on"]["clickhouse"] == {"condition": "service_healthy"}
    from analytics_site import gunicorn_conf

    assert gunicorn_conf.bind.endswith(":8006")


def test_compose_points_the_app_at_its_own_services():
    env = SERVICES["api"]["environment"]
    assert env["CLICKHOUSE_HOST"] == "clickhouse" and env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["CLICKHOUSE_USER"] == SERVICES["clickhouse"]["environment"]["CLICKHOUSE_USER"]
    assert env["CLICKHOUSE_DATABASE"] == SERVICES["clickhouse"]["environment"]["CLICKHOUSE_DB"]


def test_cluster_profile_matches_the_cluster_config():
    remote = (ROOT / "clickhouse/cluster/remote_servers.xml").read_text()
    env = SERVICES["api-cluster"]["environment"]
    assert f"<{env['CLICKHOUSE_CLUSTER']}>" in remote
    for shard in ("clickhouse-s1", "clickhouse-s2"):
        assert f"<host>{shard}</host>" in remote and SERVICES[shard]["profiles"] == ["cluster"]
    for volume in SERVICES["clickhouse-s1"]["volumes"] + SERVICES["clickhouse-s2"]["volumes"]:
        assert (ROOT / volume.split(":")[0]).exists(), volume


def test_dockerfile_final_stage_is_slim_non_root_and_health_checked():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]
    assert len(stages) == 2, "multi-stage: a build stage and a final stage"
    final = stages[1]
    assert "build-essential" not in final and "gcc" not in final
    assert re.search(r"^USER app$", final, re.MULTILINE)
    assert "/health" in final and "HEALTHCHECK" in final
    assert "EXPOSE 8006" in final


def test_one_worker_on_the_embedded_engine():
    from analytics_site import gunicorn_conf

    assert gunicorn_conf.EMBEDDED == settings.CLICKHOUSE_EMBEDDED
    if gunicorn_conf.EMBEDDED:
        assert gunicorn_conf.workers == 1


def compose_command():
    import shutil

    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_config_validates():
    """The compose tool's own validation (no engine needed): Debian's docker-compose."""
    import os
    import subprocess

    import pytest

    command = compose_command()
    if not command:
        pytest.skip("docker-compose not installed (make test installs it from Debian as root)")
    env = {**os.environ, "DJANGO_SECRET_KEY": "x"}
    for profile in ([], ["--profile", "cluster"]):
        out = subprocess.run(
            [*command, "-f", str(ROOT / "docker-compose.yml"), *profile, "config", "-q"],
            capture_output=True, text=True, env=env, timeout=60,
        )
        assert out.returncode == 0, out.stderr
    env.pop("DJANGO_SECRET_KEY")
    out = subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert out.returncode != 0 and "DJANGO_SECRET_KEY" in out.stderr
