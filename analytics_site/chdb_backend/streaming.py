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

Several statements can make one output (`statements_stream`): they run one after the other
and their outputs follow each other in the stream — on the embedded engine all into the same
pipe (each opens it, writes and closes it; the reader waits for the next), on a server one
HTTP request after the other. An export split into time slices uses this so that the engine
sorts one slice at a time (viewing/exports.py).

The generator owns its connection: when it is closed before the end (Django closes it when
the client goes away mid-download) the query is stopped — the pipe's reader closes, so the
engine's next write fails, and no further statement starts; the HTTP connection closes, so
the server cancels the query.
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
from .transport import ENGINE_ERRORS, engine_exception, server_exception

HTTP_READ_BYTES = 64 * 1024
PIPE_READ_BYTES = 64 * 1024
PIPE_POLL_SECONDS = 0.05
WRITER_JOIN_SECONDS = 30


def _param_text(value: object) -> str:
    return "\\N" if value is None else str(value)


# One statement of a stream: its SQL, its {name:Type} parameters, the engine's output format.
Statement = tuple[str, dict[str, object], str]


def query_stream(
    sql: str, *, params: dict[str, object], output_format: str, using: str = "clickhouse"
) -> Iterator[bytes]:
    """The output of `sql` in `output_format`, piece by piece. Raises
    clickhouse_driver.errors.ServerException (with the engine's code and message) for a
    query the engine refuses, at the first piece at the latest."""
    return statements_stream([(sql, params, output_format)], using=using)


def statements_stream(statements: list[Statement], *, using: str = "clickhouse") -> Iterator[bytes]:
    """The outputs of `statements`, run one after the other, as one stream of pieces. An
    error stops the stream where it happened (the statements after it do not run)."""
    text = [_text_statement(statement) for statement in statements]
    settings_dict = connections[using].settings_dict
    if settings.CLICKHOUSE_EMBEDDED:
        return _embedded_stream(settings_dict, text)
    return _http_statements(settings_dict, text)


def rewritten_stream(
    parts: list[Statement], *, final: Statement, instead: Statement, using: str = "clickhouse"
) -> Iterator[bytes]:
    """One file made by the statement `final` from the rows of `parts`, which run one after the
    other: `final`'s SQL reads them where it says `{rows}` (a table function of the given
    structure; `{rows:STRUCTURE}`), the parts' format is ignored (Native). For a file format
    that cannot be the concatenation of several outputs (Parquet). On a server, whose queries
    cannot read each other's output, `instead` runs: one statement that makes the same file."""
    settings_dict = connections[using].settings_dict
    if not settings.CLICKHOUSE_EMBEDDED:
        return _http_statements(settings_dict, [_text_statement(instead)])
    return _embedded_stream(settings_dict, [_text_statement(final)], parts=[_text_statement(p) for p in parts])


def _text_statement(statement: Statement) -> tuple[str, dict[str, str], str]:
    sql, params, fmt = statement
    return sql, {name: _param_text(value) for name, value in params.items()}, fmt


def _embedded_stream(
    settings_dict: dict, statements: list[tuple[str, dict[str, str], str]],
    parts: list[tuple[str, dict[str, str], str]] | None = None,
) -> Iterator[bytes]:
    folder = tempfile.mkdtemp(prefix="export-")  # 0700: only this process's user reads the pipes
    pipe = os.path.join(folder, "output")
    os.mkfifo(pipe, 0o600)
    source = None
    engines = []
    # Opened before the engine opens the other end, non-blocking, so neither side waits for
    # the other to open it.
    fd = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
    try:
        engines.append(open_engine(settings_dict["OPTIONS"]["path"]))
        if parts is not None:
            engines.append(open_engine(settings_dict["OPTIONS"]["path"]))
            rows = os.path.join(folder, "rows")
            os.mkfifo(rows, 0o600)
            source = _EngineWriter(engines[1], settings_dict["NAME"], [
                (sql + f"\nINTO OUTFILE '{rows}' APPEND FORMAT Native", params) for sql, params, _ in parts
            ], pipe=rows)
            statements = [(_rows_in(sql, rows), params, fmt) for sql, params, fmt in statements]
    except BaseException:
        os.close(fd)
        for engine in engines:
            engine.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    into = f"\nINTO OUTFILE '{pipe}' APPEND FORMAT "
    writer = _EngineWriter(engines[0], settings_dict["NAME"], [(sql + into + fmt, params) for sql, params, fmt in statements])
    writer.start()
    if source is not None:
        source.start()
    return _pipe_pieces(fd, writer, folder, pipe, source)


def _rows_in(sql: str, rows: str) -> str:
    # `{rows:STRUCTURE}` -> file('<pipe>', Native, 'STRUCTURE'); the structure is a constant
    # of the caller's SQL, the pipe's path one of ours.
    head, _, tail = sql.partition("{rows:")
    structure, _, rest = tail.partition("}")
    quoted = structure.replace("\\", "\\\\").replace("'", "\\'")
    return f"{head}file('{rows}', Native, '{quoted}'){rest}"


class _EngineWriter(threading.Thread):
    """Runs the statements whose output goes into a pipe, one after the other; keeps the
    first error for the reader. Stops before the next statement once the reader is gone.

    With `pipe` (the rows pipe between the parts and the final statement), it holds that
    pipe open for writing from the start until its last statement succeeded: the final
    statement reads it as one input and sees its end only then (not between two parts, and
    not after a part that failed, so a failure never looks like a complete file). Linux
    opens a FIFO O_RDWR without waiting for a reader."""

    def __init__(self, engine, database: str, statements: list[tuple[str, dict[str, str]]], pipe: str = "") -> None:
        super().__init__(name="export-writer", daemon=True)
        self.engine, self.database, self.statements = engine, database, statements
        self.error: errors.Error | None = None
        self.stopped = threading.Event()
        self.pipe = pipe
        self._hold = os.open(pipe, os.O_RDWR) if pipe else None
        self._hold_lock = threading.Lock()

    def release(self) -> None:
        """Let the pipe's reader see the end of its input."""
        with self._hold_lock:
            if self._hold is not None:
                os.close(self._hold)
                self._hold = None

    def run(self) -> None:
        try:
            self.engine.query("USE `" + self.database.replace("`", "\\`") + "`")
            for sql, params in self.statements:
                if self.stopped.is_set():
                    return
                self.engine.query(sql, "CSV", params=params)
            if not self.stopped.is_set():
                self.release()
        except ENGINE_ERRORS as e:
            if not self.stopped.is_set():
                self.error = engine_exception(e)
        finally:
            self.engine.close()


def _stop(writer: _EngineWriter, pipe: str, deadline: float) -> None:
    writer.stopped.set()
    while writer.is_alive() and time.monotonic() < deadline:
        # A statement that starts now waits in open() for a reader of the pipe: be one for
        # an instant, so its open returns and its first write fails.
        try:
            os.close(os.open(pipe, os.O_RDONLY | os.O_NONBLOCK))
        except OSError:
            pass
        writer.join(timeout=PIPE_POLL_SECONDS)


def _read_ready(fd: int) -> bytes | None:
    """What the pipe holds, or None when select() said readable and it was not after all
    (EAGAIN: one statement's writer closed the pipe and the next one's opened it in between)."""
    try:
        return os.read(fd, PIPE_READ_BYTES)
    except BlockingIOError:
        return None


def _pipe_pieces(fd: int, writer: _EngineWriter, folder: str, pipe: str, source: _EngineWriter | None = None) -> Iterator[bytes]:
    try:
        while True:
            readable, _, _ = select.select([fd], [], [], PIPE_POLL_SECONDS)
            piece = _read_ready(fd) if readable else None
            if piece:
                yield piece
            elif source is not None and source.error is not None:
                # A part failed: the final statement still waits for more rows; it is
                # stopped below, before it can end the file.
                raise source.error
            elif not writer.is_alive():
                # The statements ended: whatever they wrote is read (a closed pipe reads as b"").
                while piece := os.read(fd, PIPE_READ_BYTES):
                    yield piece
                for w in (source, writer):
                    if w is not None and w.error is not None:
                        raise w.error
                return
            elif piece == b"":
                # No writer now (before a statement opens the pipe, or between two): a pipe
                # without a writer reads as b"" at once, so wait a little instead of spinning.
                time.sleep(PIPE_POLL_SECONDS / 10)
    finally:
        # Closing the read end makes the engine's next write fail (EPIPE): a query whose
        # reader went away stops instead of running to its end, and no statement follows.
        writer.stopped.set()
        os.close(fd)
        deadline = time.monotonic() + WRITER_JOIN_SECONDS
        if source is not None:
            # The final statement, whose output nobody reads now, may end its input: its
            # writes fail. The parts' next write fails once the final statement is gone.
            source.stopped.set()
            source.release()
            _stop(writer, pipe, deadline)
            _stop(source, source.pipe, deadline)
        _stop(writer, pipe, deadline)
        shutil.rmtree(folder, ignore_errors=True)


def _http_statements(settings_dict: dict, statements: list[tuple[str, dict[str, str], str]]) -> Iterator[bytes]:
    # The first statement is sent at once, so an error before the first byte raises here;
    # each next one once the previous one's output is read.
    first = _http_stream(settings_dict, *statements[0])
    return _http_chain(first, settings_dict, statements[1:])


def _http_chain(first: Iterator[bytes], settings_dict: dict, rest: list[tuple[str, dict[str, str], str]]) -> Iterator[bytes]:
    current = first
    try:
        yield from current
        for statement in rest:
            current = _http_stream(settings_dict, *statement)
            yield from current
    finally:
        current.close()


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
