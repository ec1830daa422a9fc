"""native_encode writes the bytes clickhouse-driver's BlockOutputStream writes, for every column
type it takes, and leaves every other value to the driver (a pure piece: no engine)."""

import random
import uuid
from datetime import datetime

import pytest
from clickhouse_driver import Client
from clickhouse_driver.block import RowOrientedBlock
from clickhouse_driver.bufferedwriter import BufferedSocketWriter
from clickhouse_driver.connection import ServerInfo
from clickhouse_driver.streams.native import BlockOutputStream

from analytics_site.chdb_backend import native_encode
from analytics_site.chdb_backend.native_encode import encode_block

EVENT_TYPES = [
    ("id", "UUID"), ("user_id", "UUID"), ("movie_id", "UUID"), ("event_type", "LowCardinality(String)"),
    ("position_seconds", "UInt32"), ("event_time", "DateTime('UTC')"), ("session_id", "Nullable(UUID)"),
    ("metadata", "String"), ("created_at", "DateTime('UTC')"),
]


class _Sink:
    def __init__(self):
        self.parts = []

    def sendall(self, data):
        self.parts.append(bytes(data))


def _context(**client_settings):
    context = Client("localhost").connection.context
    context.client_settings.update(client_settings)
    context.server_info = ServerInfo("chDB", 26, 9, 0, 0, "UTC", "chdb", used_revision=0)
    return context


def _driver_bytes(columns_with_types, rows, context, types_check=False):
    sink = _Sink()
    writer = BufferedSocketWriter(sink, 1 << 20)
    BlockOutputStream(writer, context).write(RowOrientedBlock(columns_with_types, [list(r) for r in rows],
                                                              types_check=types_check))
    return b"".join(sink.parts)


def _ours(columns_with_types, rows, context, types_check=False):
    return encode_block(RowOrientedBlock(columns_with_types, [list(r) for r in rows], types_check=types_check),
                        context)


def _same(columns_with_types, rows, types_check=False, **client_settings):
    context = _context(**client_settings)
    ours = _ours(columns_with_types, rows, context, types_check)
    assert ours == _driver_bytes(columns_with_types, rows, context, types_check)
    return ours


def _event_rows(count, seed=1, big=True):
    rng = random.Random(seed)
    uid = lambda: uuid.UUID(int=rng.getrandbits(128))  # noqa: E731
    metadata = ["{}", '{"device":"tv"}', '{"note":"ünï ✓ 名前"}', "x" * 127, "y" * 128, "z" * 20_000, ""] if big else ["{}", "{\"device\":\"tv\"}"]
    return [
        (uid(), uid(), uid(), rng.choice(["start", "progress", "finish"]), rng.choice([0, 1, 2**32 - 1, 5400]),
         rng.choice([0, 1_764_547_199, 1_764_547_200, 2**32 - 1]), None if i % 3 == 0 else uid(),
         rng.choice(metadata), 1_764_547_200 + i)
        for i in range(count)
    ]


@pytest.fixture
def driver_refused(monkeypatch):
    """The driver's column writer made to fail: a block encoded anyway took the fast path."""
    def refuse(*args, **kwargs):
        raise AssertionError("written by the driver")
    monkeypatch.setattr(native_encode, "write_column", refuse)


def test_the_events_of_the_service_are_encoded_alike_without_the_driver(driver_refused):
    rows = _event_rows(3000)
    context = _context()
    ours = _ours(EVENT_TYPES, rows, context)
    assert ours == _driver_bytes(EVENT_TYPES, rows, context)


@pytest.mark.parametrize("spec, values", [
    ("UInt8", [0, 1, 255]), ("UInt16", [0, 65535]), ("UInt32", [0, 2**32 - 1]), ("UInt64", [0, 2**64 - 1]),
    ("Int8", [-128, 0, 127]), ("Int16", [-(2**15), 2**15 - 1]), ("Int32", [-(2**31), 2**31 - 1]),
    ("Int64", [-(2**63), 2**63 - 1]), ("DateTime", [0, 2**32 - 1]), ("DateTime('Asia/Kathmandu')", [86_400]),
    ("UInt8", [True, False]),
    ("UUID", [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.UUID("00000000-0000-0001-0000-000000000002")]),
    ("Nullable(UUID)", [None, None]), ("Nullable(UUID)", [uuid.UUID(int=1)]),
    ("Nullable(UUID)", [None, uuid.UUID(int=2**64), None]),
    ("String", ["", "a", "é" * 64, "b" * 128, "c" * 16_384, "\x00"]),
    ("LowCardinality(String)", ["only"]),
])
def test_each_type_is_encoded_as_the_driver_does(driver_refused, spec, values):
    _same([("col", spec)], [(v,) for v in values])


@pytest.mark.parametrize("distinct", [1, 2, 255, 256, 257, 65_535, 65_536, 65_537])
def test_low_cardinality_keys_change_size_where_the_driver_changes_them(driver_refused, distinct):
    values = [f"v{i}" for i in range(distinct)] + ["v0", f"v{distinct - 1}"]
    _same([("kind", "LowCardinality(String)")], [(v,) for v in values])


def test_a_column_name_and_type_in_any_script_are_written_as_text(driver_refused):
    _same([("名前", "String"), ("n" * 200, "UInt16")], [("x", 1), ("y", 2)])


@pytest.mark.parametrize("spec, value", [
    ("UUID", "e3e70682-c209-4cac-629f-6fbed82c07cd"),  # text: the driver parses it
    ("Nullable(UUID)", "e3e70682c2094cac629f6fbed82c07cd"),
    ("DateTime('UTC')", datetime(2026, 11, 30, 23, 59, 59)),  # a datetime: the driver converts it
    ("DateTime", datetime(2026, 12, 1)),
    ("String", b"bytes"),
    ("LowCardinality(String)", b"bytes"),
    ("Date", datetime(2026, 12, 1).date()),  # a type the fast path does not take
    ("Array(UInt32)", [1, 2]),
])
def test_values_the_driver_converts_are_left_to_it(spec, value):
    _same([("a", "UInt32"), ("col", spec)], [(1, value), (2, value)])


@pytest.mark.parametrize("spec, value", [
    ("UInt32", 2**32), ("UInt8", -1), ("UInt32", 1.5), ("UUID", "not a uuid"), ("UUID", None),
    ("String", None), ("String", "\udc80"), ("DateTime", -1),
])
def test_a_value_the_driver_refuses_gets_the_drivers_error(spec, value):
    context = _context()
    rows = [(value,)]
    with pytest.raises(Exception) as theirs:
        _driver_bytes([("col", spec)], rows, context)
    with pytest.raises(type(theirs.value)) as mine:
        _ours([("col", spec)], rows, context)
    assert str(mine.value) == str(theirs.value)


def test_other_string_settings_are_left_to_the_driver():
    _same([("s", "String"), ("k", "LowCardinality(String)")], [("ünï", "é")], strings_encoding="latin-1")


def test_blocks_it_does_not_take_are_written_whole_by_the_driver():
    _same([("a", "UInt8")], [(1,)], types_check=True)
    _same([("a", "UInt8"), ("b", "UInt8")], [(1, 2), (1, 2, 3)])  # the driver ignores the extra value
    context = _context()
    with pytest.raises(ValueError, match="Different rows length"):
        _driver_bytes([("a", "UInt8"), ("b", "UInt8")], [(1, 2), (1,)], context)
    with pytest.raises(ValueError, match="Different rows length"):
        _ours([("a", "UInt8"), ("b", "UInt8")], [(1, 2), (1,)], context)
