"""The development server as `make run` starts it (gunicorn with analytics_site.gunicorn_conf,
settings from a .env file with DEBUG on): listening on 127.0.0.1 only, one log line per
request and no traceback for an expected 4xx, and `generate_events` (make demo) storing
through it while it holds the data directory."""

import http.cookiejar
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from django.conf import settings

pytestmark = [pytest.mark.slow, pytest.mark.embedded]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DevServer:
    def __init__(self, root):
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (root / "dev.env").write_text("DJANGO_DEBUG=true\nDJANGO_SECRET_KEY=dev-server-test-key\nENABLE_KAFKA=false\n")
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ENABLE_KAFKA", "BIND_ADDRESS"))},
            "ANALYTICS_ENV_FILE": str(root / "dev.env"),
            "ANALYTICS_VAR_DIR": str(root / "var"),
            "CLICKHOUSE_DATA_DIR": str(root / "clickhouse"),
            "PORT": str(self.port),
        }
        self.log_path = root / "server.log"

    def manage(self, *args, **env):
        return subprocess.run([sys.executable, "manage.py", *args], env={**self.env, **env}, cwd=settings.BASE_DIR,
                              capture_output=True, text=True, timeout=300)

    def start(self):
        done = self.manage("migrate")
        assert done.returncode == 0, done.stderr
        gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [gunicorn, "-c", "python:analytics_site.gunicorn_conf", "analytics_site.wsgi"],
            env=self.env, cwd=settings.BASE_DIR, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2):
                    break
            except OSError:
                assert self.process.poll() is None and time.monotonic() < deadline, self.log_path.read_text()
                time.sleep(0.2)  # the server starting up: nothing to poll on but its port

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()

    def log_lines(self, since=0):
        return self.log_path.read_text().splitlines()[since:]

    def wait_for_log(self, pattern, since, timeout=10):
        deadline = time.monotonic() + timeout
        while not any(re.search(pattern, line) for line in self.log_lines(since)):
            assert time.monotonic() < deadline, f"no log line {pattern!r} in {self.log_lines(since)}"
            time.sleep(0.05)  # the log is written by another process: poll with a bound


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory):
    server = DevServer(tmp_path_factory.mktemp("dev-server"))
    server.start()
    yield server
    server.stop()


def request(url, *, opener=None, headers=None, data=None):
    req = urllib.request.Request(url, headers=headers or {}, data=data)
    try:
        with (opener or urllib.request.build_opener()).open(req, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.mark.skipif(not shutil.which("ss"), reason="ss (iproute2) not installed")
def test_it_listens_on_loopback_only(dev_server):
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, timeout=30).stdout
    addresses = [line.split()[3] for line in listening.splitlines() if line.split()[3].endswith(f":{dev_server.port}")]
    assert addresses == [f"127.0.0.1:{dev_server.port}"], listening


def staff_opener(server):
    done = server.manage("createsuperuser", "--noinput", "--username", "admin", "--email", "a@example.com",
                         DJANGO_SUPERUSER_PASSWORD="dev-server-pass")
    assert done.returncode == 0, done.stderr
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    status, page = request(f"{server.url}/admin/login/", opener=opener)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    form = urllib.parse.urlencode({"username": "admin", "password": "dev-server-pass",
                                   "csrfmiddlewaretoken": token, "next": "/admin/"}).encode()
    status, _ = request(f"{server.url}/admin/login/", opener=opener, data=form)
    assert status == 200
    return opener


def test_one_log_line_per_request_and_no_traceback_for_an_expected_4xx(dev_server):
    staff = staff_opener(dev_server)
    since = len(dev_server.log_lines())
    expected = [
        ("/nowhere", None, 404),
        ("/api/v1/analytics/trends?days=400", None, 400),
        ("/admin/viewing/viewingevent/add/", staff, 403),  # read-only in the admin
        ("/", staff, 302),
        ("/health", None, 200),
    ]
    for path, opener, status in expected:
        assert request(dev_server.url + path, opener=opener or urllib.request.build_opener(
            urllib.request.HTTPRedirectHandler()))[0] in (status, 200)
    dev_server.wait_for_log(r"GET /health 200", since)
    lines = dev_server.log_lines(since)
    for path, _, status in expected:
        route = path.split("?")[0]
        mine = [line for line in lines if f" {route} " in line]
        assert len(mine) == 1, (path, lines)
        assert re.search(rf"INFO analytics\.request GET {re.escape(route)} {status} [\d.]+ms key=-$", mine[0]), mine[0]
    text = "\n".join(lines)
    assert "Traceback" not in text and "PermissionDenied" not in text
    assert "Not Found:" not in text and "Forbidden" not in text  # Django's own 4xx lines
    assert "HTTP/1.1" not in text  # gunicorn's access log lines


def test_a_request_with_a_key_logs_its_prefix(dev_server):
    done = dev_server.manage("create_api_key", "--name", "log-test", "--scope", "read")
    key = done.stdout.strip()
    since = len(dev_server.log_lines())
    try:
        status, _ = request(f"{dev_server.url}/api/v1/analytics/trends?days=2", headers={"Authorization": f"Api-Key {key}"})
        assert status == 200
        dev_server.wait_for_log(r"GET /api/v1/analytics/trends 200", since)
        assert f"key={key.split('.')[0]}" in "\n".join(dev_server.log_lines(since))
    finally:
        dev_server.manage("shell", "-c", "from analytics_site.access.models import ApiKey; ApiKey.objects.all().delete()")


def test_a_host_not_allowed_is_one_line_without_a_traceback(dev_server):
    since = len(dev_server.log_lines())
    status, body = request(dev_server.url + "/health", headers={"Host": "192.0.2.7:8006"})
    assert status == 400 and json.loads(body)["detail"]
    dev_server.wait_for_log(r"GET /health 400", since)
    lines = dev_server.log_lines(since)
    assert len([line for line in lines if "Invalid HTTP_HOST header: '192.0.2.7:8006'" in line]) == 1, lines
    assert "Traceback" not in "\n".join(lines)


def test_generate_events_goes_through_the_server_that_holds_the_data_directory(dev_server):
    done = dev_server.manage("generate_events", "--events", "25000", "--days", "3", "--seed", "7", "--migrate")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Code: 76" not in done.stderr
    assert f"sending the events to {dev_server.url}" in done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(rf"generated 25000 events, 25000 accepted by {dev_server.url} \(ids already stored are "
                        r"kept once\) in [\d.]+ s \([\d,]+ events/s\)", summary), summary
    status, body = request(f"{dev_server.url}/api/v1/analytics/trends?days=3")
    assert status == 200
    assert sum(day["total_events"] for day in json.loads(body)["trends"]) == 25000
    # The open mode is back: the run needed no key (DEBUG on, none exists) and left none.
    keys = dev_server.manage("shell", "-c", "from analytics_site.access.models import ApiKey; print(ApiKey.objects.count())")
    assert keys.stdout.strip().splitlines()[-1] == "0"
