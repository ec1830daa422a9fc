"""The commands of the documentation run as written, as a new user runs them, on a fresh clone.

Which commands: every shell block of README.md, and the shell blocks of docs/*.md that are
marked `<!-- runs in tests -->` (or `<!-- runs in tests after make run stops -->`) on the
line before them — read from the files, so an edit of the docs is what gets run. In order,
one shell state (variables like KEY carry over), each command on its own:
- none may exit non-zero or print a traceback, and the servers they start log no 5xx;
- `make run` and `make broker` keep running: they are started in the background and waited
  for (a second `make run` replaces the first), and `make run` must listen on 127.0.0.1 only;
- substituted: the port (8006 → a free one, through PORT), the broker (KAFKA_BOOTSTRAP_SERVERS
  → a free port), `make demo` makes 20,000 events instead of 1,000,000, and `make` does not
  reinstall the virtualenv (`-o .venv/.installed…`: the clone's .venv is this run's). Skipped:
  `make test`, which runs this test.
The fresh clone is the repository's files (tracked, and new ones not ignored) copied to a
temporary directory: no .env, no var/, nothing a previous run left. Its data directory is
thrown away with it.
"""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.embedded, pytest.mark.kafka]

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"<!--\s*runs in tests(?P<after> after make run stops)?\s*-->")
LONG_RUNNING = ("make run", "make broker")
SKIPPED = ("make test",)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shell_blocks(text, *, marked_only):
    """[(after_make_run_stops, [lines])] of the ```sh blocks of a markdown text."""
    blocks, lines, marker, previous = [], None, None, ""
    for line in text.splitlines():
        if lines is None and line.strip() == "```sh":
            lines, marker = [], MARKER.search(previous)
        elif lines is not None and line.strip() == "```":
            if marker or not marked_only:
                blocks.append((bool(marker and marker.group("after")), lines))
            lines = None
        elif lines is not None:
            lines.append(line)
        if line.strip():
            previous = line
    return blocks


def commands(lines):
    """The block's commands: comment lines dropped, continuation lines (a trailing backslash,
    or a quote still open) joined."""
    found, current = [], ""
    for line in lines:
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current = f"{current}\n{line}" if current else line
        if current.endswith("\\"):
            continue
        try:
            shlex.split(current, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        found.append(current)
        current = ""
    assert not current, f"unterminated command: {current}"
    return found


def documented_commands():
    """[(source, after_make_run_stops, command)] in the order a reader meets them."""
    out = []
    for after, lines in shell_blocks((ROOT / "README.md").read_text(), marked_only=False):
        out += [("README.md", after, c) for c in commands(lines)]
    for path in sorted((ROOT / "docs").glob("*.md")):
        for after, lines in shell_blocks(path.read_text(), marked_only=True):
            out += [(f"docs/{path.name}", after, c) for c in commands(lines)]
    return out


def test_the_command_reader_follows_the_markdown():
    text = ("```sh\nmake run     # serves\ncurl -s -X POST x \\\n  -d '{\"a\":\n   1}'\n# a note\n```\n"
            "<!-- runs in tests after make run stops -->\n```sh\nKEY=$(echo k)\n```\n```sh\nnot marked\n```\n")
    assert shell_blocks(text, marked_only=True) == [(True, ["KEY=$(echo k)"])]
    first = shell_blocks(text, marked_only=False)[0][1]
    assert commands(first) == ["make run     # serves", "curl -s -X POST x \\\n  -d '{\"a\":\n   1}'"]
    found = documented_commands()
    assert any(c.startswith("make run") for _, _, c in found)
    assert any("produce-sample" in c for _, _, c in found)  # the Kafka walk-through is marked


class Clone:
    def __init__(self, root):
        self.dir = root / "clone"
        self.port = free_port()
        self.kafka_port = free_port()
        self.state = root / "state.sh"
        self.state.write_text("")
        self.background = {}
        self.logs = root / "logs"
        self.logs.mkdir()
        files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                               cwd=ROOT, capture_output=True, timeout=60)
        if files.returncode != 0:
            pytest.skip("not a git checkout: which files a clone has is unknown")
        for name in filter(None, files.stdout.decode().split("\0")):
            source = ROOT / name
            if source.is_file() and not source.is_symlink():
                (self.dir / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, self.dir / name)
        os.symlink(sys.prefix, self.dir / ".venv")  # this run's virtualenv, as `make` made it
        self.env = {
            **{k: v for k, v in os.environ.items()
               if not k.startswith(("DJANGO_", "CLICKHOUSE_", "KAFKA_", "ANALYTICS_", "ENABLE_KAFKA", "BIND_"))},
            "PORT": str(self.port),
            "KAFKA_BOOTSTRAP_SERVERS": f"localhost:{self.kafka_port}",
        }

    def script(self, command):
        # Only the variables the docs assign are carried from one command to the next.
        names = re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=", command, re.MULTILINE)
        save = "".join(f'; printf "%s=%q\\n" {n} "${n}" >> {shlex.quote(str(self.state))}' for n in names)
        make = "make() { command make -o .venv/.installed -o .venv/.installed-dev \"$@\"; }"
        return f"{make}\nsource {shlex.quote(str(self.state))}\n{command}\nrc=$?{save}\nexit $rc"

    def substitute(self, command):
        command = command.replace("localhost:8006", f"localhost:{self.port}")
        command = command.replace("127.0.0.1:8006", f"127.0.0.1:{self.port}")
        return re.sub(r"\bmake demo\b", "make demo DEMO_EVENTS=20000", command)

    def run(self, command, timeout=600):
        return subprocess.run(["bash", "-c", self.script(command)], cwd=self.dir, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def start(self, name, command):
        self.stop(name)
        log = open(self.logs / f"{name.replace(' ', '-')}-{time.monotonic_ns()}.log", "w")
        process = subprocess.Popen(["bash", "-c", self.script(command)], cwd=self.dir, env=self.env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.background[name] = (process, log)
        ready = (lambda: http_ok(f"http://127.0.0.1:{self.port}/health")) if name == "make run" else \
            (lambda: port_open(self.kafka_port))
        deadline = time.monotonic() + 300
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`{command}` did not come up:\n{Path(log.name).read_text()[-3000:]}")
            time.sleep(0.2)  # a server starting: nothing to poll on but its port

    def stop(self, name):
        process, log = self.background.pop(name, (None, None))
        if process is None:
            return
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C, as the docs say
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        log.close()

    def stop_all(self):
        for name in list(self.background):
            self.stop(name)


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def listening(port):
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, timeout=30).stdout
    return sorted(line.split()[3] for line in out.splitlines() if line.split()[3].endswith(f":{port}"))


def test_every_documented_command_runs_on_a_fresh_clone(tmp_path):
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    clone = Clone(tmp_path)
    ran = []
    try:
        for source, after_make_run_stops, documented in documented_commands():
            if after_make_run_stops:
                clone.stop("make run")
            command = clone.substitute(documented)
            name = next((n for n in LONG_RUNNING if command.startswith(n)), None)
            if any(command.startswith(s) for s in SKIPPED):
                continue
            if name:
                clone.start(name, command)
                if name == "make run" and shutil.which("ss"):
                    assert listening(clone.port) == [f"127.0.0.1:{clone.port}"], "make run must bind loopback only"
            else:
                done = clone.run(command)
                output = done.stdout + done.stderr
                assert done.returncode == 0, f"{source}: `{documented}` exited {done.returncode}:\n{output[-3000:]}"
                assert "Traceback" not in output, f"{source}: `{documented}` printed a traceback:\n{output[-3000:]}"
            ran.append(documented.splitlines()[0])
    finally:
        clone.stop_all()
    for log in clone.logs.iterdir():
        text = log.read_text()
        assert "Traceback" not in text, f"{log.name}:\n{text[-3000:]}"
        assert not re.search(r"analytics\.request \w+ \S+ 5\d\d ", text), f"{log.name}: a 5xx\n{text[-3000:]}"
    assert (clone.dir / ".env").is_file() and "DJANGO_DEBUG=true" in (clone.dir / ".env").read_text()
    documented = [c for _, _, c in documented_commands() if not c.startswith(SKIPPED)]
    assert len(ran) == len(documented) and any(c.startswith("make produce-sample") for c in ran), ran
