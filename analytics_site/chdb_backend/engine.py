"""The embedded ClickHouse engine (chdb) of this process: opening it, and who owns its data
directory.

chdb runs a whole ClickHouse server inside the process. Facts this module is built around
(measured with chdb-core 26.9):
- chdb locks its data directory to one process, and one process can open only one data
  directory. Connections of one process to that directory are independent and run in
  parallel.
- A directory held by another process surfaces as "Error initializing EmbeddedServer: .
  (BAD_ARGUMENTS)" with the cause only on stderr. `EngineLocked` names the directory and the
  holder's pid (from the `status` file the engine keeps there) instead.
- Server-level settings (`ENGINE_STARTUP`) are taken when the engine starts, from the
  connection string of the first connection.

The protocol spoken over a connection lives in transport.py; this module never runs a query.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from clickhouse_driver import errors

# Server-level settings given to the engine when it starts. The 5 GiB default mark cache is
# sized for a dedicated server, not for an engine sharing a process with a web app.
ENGINE_STARTUP: dict[str, int] = {"mark_cache_size": 512 * 1024 * 1024}

# chdb 26.x only opens one data directory per process; remember which, to fail clearly.
_engine_lock = threading.Lock()
_engine_path: str | None = None


class EngineLocked(errors.Error):
    """The data directory is held by another process (chdb allows one process per path)."""

    code = 76  # CANNOT_OPEN_FILE, what ClickHouse itself reports for a locked directory

    def __init__(self, path: str) -> None:
        self.path = path
        holder = lock_holder(path)
        self.message = (
            f"The embedded ClickHouse data directory {path} is in use by another process"
            f"{f' (pid {holder})' if holder else ''}. The embedded engine lets one process "
            "own its data directory: stop that process, or point CLICKHOUSE_DATA_DIR "
            "elsewhere, or use a ClickHouse server (CLICKHOUSE_HOST)."
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def lock_holder(path: str) -> str | None:
    """The pid of the process that runs the engine on `path`, as its `status` file says."""
    try:
        with open(os.path.join(path, "status")) as f:
            for line in f:
                if line.startswith("PID:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def held_elsewhere(path: str) -> bool:
    """True when another process holds the engine's lock on `path` (the engine flock()s its
    `status` file). Asked before chdb opens the directory, because chdb prints its own
    multi-line CANNOT_OPEN_FILE error to stderr when the lock is taken; EngineLocked says it
    in one line."""
    import fcntl

    try:
        fd = os.open(os.path.join(path, "status"), os.O_RDONLY)
    except OSError:
        return False  # a new directory: nobody has it yet
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's own lock, if it got one
    return False


def engine_path() -> str | None:
    """The data directory this process's engine runs on, None before the first open."""
    return _engine_path


def open_engine(path: str) -> Any:
    """A new chdb connection to `path` (the engine starts on the first one).

    Raises EngineLocked when another process holds the directory, and clickhouse-driver's
    Error when this process already runs the engine on another directory.
    """
    global _engine_path
    import chdb  # ~240 MB of engine; only loaded when the embedded engine is used

    path = os.path.abspath(path)
    with _engine_lock:
        if _engine_path is not None and _engine_path != path:
            raise errors.Error(
                f"This process already runs the embedded ClickHouse on {_engine_path}; "
                f"chdb cannot open a second data directory ({path}) in the same process."
            )
        os.makedirs(path, exist_ok=True)
        if _engine_path is None and held_elsewhere(path):
            raise EngineLocked(path)
        try:
            startup = "&".join(f"{k}={v}" for k, v in ENGINE_STARTUP.items())
            conn = chdb.connect(f"file:{path}?{startup}")
        except RuntimeError as e:
            if "EmbeddedServer" in str(e) or "lock" in str(e).lower():
                raise EngineLocked(path) from None
            raise
        _engine_path = path
        return conn
