"""CLICKHOUSE_FSYNC (viewing/durability.py): which tables fsync each new part, applied by migrate."""

import re

import pytest

from tests.conftest import query
from viewing import ddl
from viewing.durability import STORED_TABLES, durability_apply, fsync_tables


def fsynced():
    rows = query("SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree'")
    return {name for name, engine in rows
            if re.search(r"fsync_after_insert = 1\b", engine) and re.search(r"fsync_part_directory = 1\b", engine)}


def test_migrate_fsyncs_the_tables_that_say_what_is_stored(ch):
    assert set(STORED_TABLES) <= {t.name for t in ddl.TABLES}
    assert fsynced() == set(STORED_TABLES)


def test_each_mode_alters_only_what_differs_and_back(ch):
    every = {t.name for t in ddl.TABLES}
    try:
        assert set(durability_apply(mode="all")) == every - set(STORED_TABLES)
        assert fsynced() == every
        assert set(durability_apply(mode="off")) == every
        assert fsynced() == set()
        assert durability_apply(mode="off") == []
    finally:
        durability_apply(mode="stored")
    assert fsynced() == set(STORED_TABLES)


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="CLICKHOUSE_FSYNC must be one of stored, all, off, not 'yes'"):
        fsync_tables("yes")
