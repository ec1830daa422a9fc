"""A clickhouse-driver transport onto chdb: the ClickHouse engine, in-process.

clickhouse-driver speaks ClickHouse's native protocol to a server over a socket. This module
replaces only the socket end: `EmbeddedConnection` is a `clickhouse_driver.connection.Connection`
whose packets come from chdb instead of the network. Queries run in chdb with output format
`Native`, and clickhouse-driver's own `BlockInputStream` decodes the bytes, so results are
exactly the Python values a server would give. Inserts are encoded into the bytes
clickhouse-driver's own `BlockOutputStream` writes (native_encode.py writes the same bytes
faster) in an in-memory file, read by chdb with `INSERT ... FROM INFILE ... FORMAT Native`.
Everything above the connection (Client, dbapi, django-clickhouse-backend, the ORM) runs
unchanged.

Opening the engine and owning its data directory are engine.py's; this module only speaks
the protocol over a chdb connection it is given by `open_engine`.

Facts this is built around (measured with chdb-core 26.9):
- One chdb connection runs one query at a time, while connections of one process run in
  parallel. So each driver connection owns its own chdb connection, and a pool gives one to
  each thread.
- chdb's session default is `async_insert=1`; settings are applied per connection with SET,
  so the caller's explicit settings always win.
- Native output at revision 0 carries no block info, so the transport reports revision 0 and
  clickhouse-driver neither expects nor writes the server-only protocol extras.
- chdb's streaming insert (`send_insert` / `append` / `finish`) does not raise when the engine
  rejects the rows at commit (a violated CHECK constraint, a full disk: `finish()` reports the
  rows written and the table stays empty). A plain query does raise, so an INSERT reads its
  Native blocks from a memfd (`FROM INFILE '/proc/self/fd/N'`) as one query, and every error
  a server would send back reaches the caller as the same ServerException.
"""

import os
import re
import tempfile
from collections import deque
from typing import Any

from clickhouse_driver import Client, errors
from clickhouse_driver.block import RowOrientedBlock
from clickhouse_driver.bufferedreader import BufferedSocketReader
from clickhouse_driver.connection import Connection, Packet, ServerInfo
from clickhouse_driver.protocol import ServerPacketTypes
from clickhouse_driver.streams.native import BlockInputStream

from .engine import open_engine
from .native_encode import encode_block

# clickhouse-driver sends an INSERT as "INSERT INTO t [(cols)] [SETTINGS ...] VALUES" and the
# rows separately. FROM INFILE goes between the columns and SETTINGS, so the parts are kept apart.
# One name character per repetition: `[\w.]+` inside `(...)+` backtracked exponentially in the
# name's length on every INSERT that is not `... VALUES` (INSERT ... SELECT into a 21-letter
# table took 2.5 s in this regex alone, 8 letters more would take minutes).
INSERT_RE = re.compile(
    r"^\s*insert\s+into\s+(?:table\s+)?(?P<table>(?:`[^`]+`|\"[^\"]+\"|[\w.])+)"
    r"\s*(?:\((?P<columns>[^)]*)\))?\s*(?P<settings>settings\s[^;]*?)?\s*values\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
CODE_RE = re.compile(r"Code: (\d+)\.")
_BUFFER_SIZE = 1 << 20


def server_exception(message: str) -> errors.ServerException:
    """An engine error as clickhouse-driver's ServerException, with ClickHouse's error code."""
    m = CODE_RE.search(message)
    return errors.ServerException(message, code=int(m.group(1)) if m else None)


# What a failed chdb query raises: its ChdbError (a RuntimeError), or UnicodeDecodeError when
# the engine's message quotes bytes that are not UTF-8 (data it could not parse) and chdb
# fails to turn the message into text.
ENGINE_ERRORS = (RuntimeError, UnicodeDecodeError)


def engine_exception(error: Exception) -> errors.ServerException:
    """A failed chdb query's error (one of ENGINE_ERRORS) as the engine's ServerException."""
    if isinstance(error, UnicodeDecodeError):
        return server_exception(f"The engine refused the query; its error message is not UTF-8 text "
                                f"({error.reason} at byte {error.start}).")
    return server_exception(str(error))


def _sql_setting_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


class _BytesSource:
    """What BufferedSocketReader reads from: a bytes object behind a socket's recv_into."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def recv_into(self, buf: bytearray | memoryview, nbytes: int = 0) -> int:
        n = min(nbytes or len(buf), len(self.data) - self.pos)
        buf[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n

    def settimeout(self, *_: Any) -> None:
        pass


class _InsertFile:
    """The Native blocks of one INSERT, in an anonymous in-memory file that the engine reads
    by path (`/proc/self/fd/N`) when the data is complete."""

    def __init__(self, *, table: str, columns: str, settings: str) -> None:
        self.table, self.columns, self.settings = table, columns, settings
        if hasattr(os, "memfd_create"):
            self.fd = os.memfd_create("chdb-insert", os.MFD_CLOEXEC)
            self.path = f"/proc/self/fd/{self.fd}"
        else:  # macOS: no memfd; a temporary file, already unlinked, read through /dev/fd
            with tempfile.TemporaryFile() as f:
                self.fd = os.dup(f.fileno())
            self.path = f"/dev/fd/{self.fd}"

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def query(self) -> str:
        columns = f" ({self.columns})" if self.columns else ""
        # The path is ours (digits only), never input; SETTINGS come after FROM INFILE.
        return (
            f"INSERT INTO {self.table}{columns} FROM INFILE '{self.path}' "
            f"{self.settings} FORMAT Native"
        )

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class EmbeddedConnection(Connection):
    """A clickhouse-driver Connection whose server is chdb in this process."""

    def __init__(self, *args: Any, path: str, **kwargs: Any) -> None:
        kwargs.pop("host", None)
        kwargs.pop("port", None)
        super().__init__("embedded", *args, **kwargs)
        self.path = os.path.abspath(path)
        self._engine = None
        self._packets = deque()
        self._inserter = None
        self._applied = {}

    def __repr__(self) -> str:
        return f"<EmbeddedConnection path={self.path} database={self.database}>"

    # Connection lifecycle -------------------------------------------------------------
    def connect(self) -> None:
        if self.connected:
            self.disconnect()
        self._engine = open_engine(self.path)
        version = self._engine.query("SELECT version(), timezone()", "TSV").bytes()
        version, timezone = version.decode().strip().split("\t")
        major, minor, patch = (list(map(int, version.split(".")[:3])) + [0, 0, 0])[:3]
        self.server_info = ServerInfo(
            "chDB", major, minor, patch, 0, timezone, "chdb", used_revision=0
        )
        self.context.server_info = self.server_info
        self.connected = True
        self._applied = {}
        if self.database and self.database != "default":
            # Like a server, a missing database is an error (UNKNOWN_DATABASE), not created
            # here: `manage.py migrate` creates it, so a dropped database cannot silently
            # come back empty.
            quoted = "`" + self.database.replace("`", "\\`") + "`"
            try:
                self._engine.query(f"USE {quoted}")
            except RuntimeError as e:
                self.disconnect()
                raise server_exception(str(e)) from None

    def force_connect(self) -> None:
        if not self.connected:
            self.connect()

    def ping(self) -> bool:
        return self.connected

    def disconnect(self) -> None:
        if self._inserter is not None:
            self._inserter.close()
            self._inserter = None
        if self._engine is not None:
            try:
                self._engine.close()
            except Exception:
                pass
        self._engine = None
        self._packets.clear()
        self.connected = False
        self.is_query_executing = False
        self.server_info = None

    # Queries --------------------------------------------------------------------------
    def _apply_settings(self) -> None:
        wanted = {k: _sql_setting_value(v) for k, v in (self.context.settings or {}).items()}
        statements = [f"{k} = {v}" for k, v in wanted.items() if self._applied.get(k) != v]
        statements += [f"{k} = DEFAULT" for k in self._applied if k not in wanted]
        if statements:
            self._engine.query("SET " + ", ".join(statements))
            self._applied = wanted

    def _run(self, sql: str, fmt: str = "Native") -> bytes:
        try:
            return self._engine.query(sql, fmt).bytes()
        except ENGINE_ERRORS as e:
            raise engine_exception(e) from None

    def send_query(self, query: str, query_id: str | None = None, params: Any = None) -> None:
        if not self.connected:
            self.connect()
        self._packets.clear()
        try:
            self._apply_settings()
            insert = INSERT_RE.match(query)
            if insert:
                self._start_insert(insert)
            else:
                self._queue_result(self._run(query))
        except errors.ServerException as e:
            self._queue(ServerPacketTypes.EXCEPTION, exception=e)

    def _start_insert(self, match: re.Match[str]) -> None:
        columns = (match.group("columns") or "").strip()
        table = match.group("table")
        described = self._run(f"DESCRIBE (SELECT {columns or '*'} FROM {table})", "TabSeparatedRaw")
        columns_with_types = [
            tuple(line.split("\t")[:2]) for line in described.decode().splitlines() if line
        ]
        self._inserter = _InsertFile(
            table=table, columns=columns, settings=(match.group("settings") or "").strip()
        )
        self._queue(ServerPacketTypes.DATA, block=RowOrientedBlock(columns_with_types))

    def _queue_result(self, data: bytes) -> None:
        source = _BytesSource(data)
        reader = BufferedSocketReader(source, _BUFFER_SIZE)
        stream = BlockInputStream(reader, self.context)
        # Bytes consumed = what the reader pulled from the source minus what it still buffers.
        while source.pos - (reader.current_buffer_size - reader.position) < len(data):
            self._queue(ServerPacketTypes.DATA, block=stream.read())
        self._queue(ServerPacketTypes.END_OF_STREAM)

    def _queue(
        self, packet_type: int, block: Any = None, exception: Exception | None = None
    ) -> None:
        packet = Packet()
        packet.type = packet_type
        packet.block = block
        packet.exception = exception
        self._packets.append(packet)

    def send_external_tables(self, tables: Any, types_check: bool = False) -> None:
        if tables:
            raise errors.UnknownPacketFromServerError(
                "External tables are not supported by the embedded engine"
            )

    def send_data(self, block: Any, table_name: str = "") -> None:
        if self._inserter is None:
            raise errors.UnexpectedPacketFromServerError("send_data outside an INSERT")
        if block.num_rows == 0 and not block.columns_with_types:
            # clickhouse-driver marks the end of the data with an empty block: run the INSERT.
            inserter, self._inserter = self._inserter, None
            try:
                self._run(inserter.query(), "TabSeparated")
            except errors.ServerException as e:
                self._queue(ServerPacketTypes.EXCEPTION, exception=e)
                return
            finally:
                inserter.close()
            self._queue(ServerPacketTypes.END_OF_STREAM)
            return
        self._inserter.write(encode_block(block, self.context))

    def send_cancel(self) -> None:
        if self._inserter is not None:
            self._inserter.close()
            self._inserter = None
        self._packets.clear()
        self._queue(ServerPacketTypes.END_OF_STREAM)

    def receive_packet(self) -> Packet:
        if not self._packets:
            raise errors.UnexpectedPacketFromServerError("No packet pending from the engine")
        packet = self._packets.popleft()
        if packet.type == ServerPacketTypes.EXCEPTION and self._inserter is not None:
            self._inserter.close()
            self._inserter = None
        return packet


class EmbeddedClientMixin:
    """Makes a clickhouse-driver Client (or subclass) talk to chdb: `Client(path=...)`."""

    def __init__(self, *args: Any, path: str, **kwargs: Any) -> None:
        kwargs.pop("host", None)
        kwargs.pop("port", None)
        super().__init__("embedded", **kwargs)
        conn_kwargs = {
            k: v for k, v in kwargs.items() if k not in ("settings", "round_robin", "alt_hosts")
        }
        # The socket connection the base class built is never opened; replace it.
        self.connections = deque()
        self.connection = EmbeddedConnection(path=path, **conn_kwargs)
        self.connection.context.settings = self.settings
        self.connection.context.client_settings = self.client_settings


class EmbeddedClient(EmbeddedClientMixin, Client):
    """clickhouse_driver.Client on the embedded engine."""
