"""Query output formatted by ClickHouse itself (CSVWithNames, JSONEachRow, Parquet, ...) and
handed over piece by piece as the engine writes it, so a caller can stream a result of any
size while holding a few pieces in memory.

clickhouse-driver cannot do this: over the native protocol a server sends Native blocks and
the client formats them, and the embedded transport materializes a whole result before
decoding it. So:

- Embedded (chdb): the query runs on a connection of its own (opening one costs < 1 ms once
  the engine runs) in a thread, with `INTO OUTFILE '<a named pipe>' APPEND FORMAT …`; the
  engine writes the file into the pipe as it produces it and the caller reads the other end
  in 64 KiB pieces. The pipe's buffer is the back-pressure: the engine waits while nobody
  reads. (chdb's streaming query, `send_query`, was tried first: it formats each block as a
  file of its own — a CSV header per block, a complete Parquet file per block — so its
  pieces do not add up to one file.)
- Server: ClickHouse's HTTP interface (`CLICKHOUSE_HTTP_PORT`, default 8123), which writes
  the formatted output as it is produced, read here in 64 KiB pieces (stdlib http.client).

Both take the same SQL with `{name:Type}` query parameters, whose values travel apart from
the SQL text (chdb `params`, HTTP `param_<name>`), so user input is never part of a query.
A value of None is SQL NULL (`\\N`, as in the HTTP interface).

The generator owns its connection: when it is closed before the end (Django closes it when
the client goes away mid-download) the query is stopped — the pipe's reader closes, so the
engine's next write fails; the HTTP connection closes, so the server cancels the query.
"""

from __future__ import annotations

import http.client
import os
import select
import shutil
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator

from clickhouse_driver import errors
from django.conf import settings
from django.db import connections

from .engine import open_engine
from .transport import server_exception

HTTP_READ_BYTES = 64 * 1024
PIPE_READ_BYTES = 64 * 1024
PIPE_POLL_SECONDS = 0.05
WRITER_JOIN_SECONDS = 30


def _param_text(value: object) -> str:
    return "\\N" if value is None else str(value)


def query_stream(
    sql: str, *, params: dict[str, object], output_format: str, using: str = "clickhouse"
) -> Iterator[bytes]:
    """The output of `sql` in `output_format`, piece by piece. Raises
    clickhouse_driver.errors.ServerException (with the engine's code and message) for a
    query the engine refuses, at the first piece at the latest."""
    text_params = {name: _param_text(value) for name, value in params.items()}
    settings_dict = connections[using].settings_dict
    if settings.CLICKHOUSE_EMBEDDED:
        return _embedded_stream(settings_dict, sql, text_params, output_format)
    return _http_stream(settings_dict, sql, text_params, output_format)


def _embedded_stream(settings_dict: dict, sql: str, params: dict[str, str], output_format: str) -> Iterator[bytes]:
    folder = tempfile.mkdtemp(prefix="export-")  # 0700: only this process's user reads the pipe
    pipe = os.path.join(folder, "output")
    os.mkfifo(pipe, 0o600)
    # Opened before the engine opens the other end, non-blocking, so neither side waits for
    # the other to open it.
    fd = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
    try:
        engine = open_engine(settings_dict["OPTIONS"]["path"])
    except BaseException:
        os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)
        raise
    writer = _EngineWriter(engine, settings_dict["NAME"], f"{sql}\nINTO OUTFILE '{pipe}' APPEND FORMAT {output_format}", params)
    writer.start()
    return _pipe_pieces(fd, writer, folder)


class _EngineWriter(threading.Thread):
    """Runs the query whose output goes into the pipe; keeps its error for the reader."""

    def __init__(self, engine, database: str, sql: str, params: dict[str, str]) -> None:
        super().__init__(name="export-writer", daemon=True)
        self.engine, self.database, self.sql, self.params = engine, database, sql, params
        self.error: errors.Error | None = None

    def run(self) -> None:
        try:
            self.engine.query("USE `" + self.database.replace("`", "\\`") + "`")
            self.engine.query(self.sql, "CSV", params=self.params)
        except RuntimeError as e:  # chdb's ChdbError is a RuntimeError
            self.error = server_exception(str(e))
        finally:
            self.engine.close()


def _pipe_pieces(fd: int, writer: _EngineWriter, folder: str) -> Iterator[bytes]:
    try:
        while True:
            readable, _, _ = select.select([fd], [], [], PIPE_POLL_SECONDS)
            piece = os.read(fd, PIPE_READ_BYTES) if readable else None
            if piece:
                yield piece
            elif not writer.is_alive():
                # The query ended: whatever it wrote is read (a closed pipe reads as b"").
                while piece := os.read(fd, PIPE_READ_BYTES):
                    yield piece
                if writer.error is not None:
                    raise writer.error
                return
            elif piece == b"":
                # No writer yet (or between its open and first write): a pipe without a
                # writer reads as b"" at once, so wait a little instead of spinning.
                time.sleep(PIPE_POLL_SECONDS / 10)
    finally:
        # Closing the read end makes the engine's next write fail (EPIPE): a query whose
        # reader went away stops instead of running to its end.
        os.close(fd)
        writer.join(timeout=WRITER_JOIN_SECONDS)
        shutil.rmtree(folder, ignore_errors=True)


def _http_stream(settings_dict: dict, sql: str, params: dict[str, str], output_format: str) -> Iterator[bytes]:
    query = {"database": settings_dict["NAME"], "default_format": output_format}
    query.update({f"param_{name}": value for name, value in params.items()})
    timeout = settings_dict.get("OPTIONS", {}).get("connect_timeout", 5)
    conn = http.client.HTTPConnection(settings_dict["HOST"], settings.CLICKHOUSE_HTTP_PORT, timeout=timeout)
    try:
        conn.request(
            "POST",
            "/?" + urllib.parse.urlencode(query),
            body=sql.encode(),
            headers={
                "X-ClickHouse-User": settings_dict.get("USER") or "default",
                "X-ClickHouse-Key": settings_dict.get("PASSWORD") or "",
            },
        )
        # Connected: from here on a slow query is not a dead server.
        conn.sock.settimeout(None)
        response = conn.getresponse()
    except OSError as e:
        conn.close()
        raise errors.NetworkError(f"ClickHouse HTTP interface: {e}") from None
    if response.status != 200:
        message = response.read().decode(errors="replace")
        conn.close()
        raise server_exception(message)
    return _http_pieces(conn, response)


def _http_pieces(conn: http.client.HTTPConnection, response: http.client.HTTPResponse) -> Iterator[bytes]:
    try:
        while piece := response.read(HTTP_READ_BYTES):
            yield piece
    finally:
        conn.close()  # closing the socket makes the server cancel the query
