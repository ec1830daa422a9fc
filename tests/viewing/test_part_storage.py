"""CLICKHOUSE_PACKED_PART_BYTES (viewing/part_storage.py): parts below the threshold keep their
files in one archive, applied by migrate; the events read back, merge and delete as before."""

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from tests.conftest import query
from viewing import ddl
from viewing.part_storage import SETTING, packed_apply
from viewing.services import events_store


def thresholds():
    rows = query("SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() "
                 "AND engine LIKE '%MergeTree'")
    return {name: int(m.group(1)) if (m := re.search(rf"\b{SETTING} = (\d+)", engine)) else 0
            for name, engine in rows}


def events(count, seed):
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    user, movie = uuid.UUID(int=seed), uuid.UUID(int=seed + 1)
    return [{"id": uuid.uuid4(), "user_id": user, "movie_id": movie, "event_type": "progress",
             "position_seconds": i, "event_time": now - timedelta(seconds=i), "session_id": None,
             "metadata": "{}"} for i in range(count)]


def storage_types(table):
    return dict(query("SELECT part_storage_type, count() FROM system.parts WHERE database = currentDatabase() "
                      "AND table = %(t)s AND active GROUP BY part_storage_type", {"t": table}))


def test_migrate_sets_the_threshold_on_every_data_table(ch):
    if not query("SELECT count() FROM system.merge_tree_settings WHERE name = %(n)s", {"n": SETTING})[0][0]:
        pytest.skip("this ClickHouse has no packed part storage")
    assert settings.CLICKHOUSE_PACKED_PART_BYTES == 10 * 1024 * 1024
    found = thresholds()
    assert {t.name for t in ddl.TABLES} <= set(found)
    assert {found[t.name] for t in ddl.TABLES} == {settings.CLICKHOUSE_PACKED_PART_BYTES}


def test_an_inserts_parts_are_packed_and_read_merge_and_delete_as_before(ch):
    if not thresholds().get("viewing_events"):
        pytest.skip("packed part storage is off here")
    first, second = events(50, seed=10), events(70, seed=20)
    assert events_store(events=first) == 50 and events_store(events=second) == 70
    for table in ("viewing_events", "event_ids", "popular_content_daily", "active_span_daily"):
        assert storage_types(table) == {"Packed": 2}, table
    assert query("SELECT count(), sum(position_seconds) FROM viewing_events") == [
        (120, sum(range(50)) + sum(range(70)))]
    query("OPTIMIZE TABLE viewing_events FINAL")
    assert storage_types("viewing_events") == {"Packed": 1}  # a small merge stays under the threshold
    query("DELETE FROM viewing_events WHERE user_id = %(u)s", {"u": uuid.UUID(int=10)})
    assert query("SELECT count(), min(user_id) FROM viewing_events") == [(70, uuid.UUID(int=20))]


def test_zero_resets_it_and_a_part_is_then_written_in_full(ch):
    if not query("SELECT count() FROM system.merge_tree_settings WHERE name = %(n)s", {"n": SETTING})[0][0]:
        pytest.skip("this ClickHouse has no packed part storage")
    every = {t.name for t in ddl.TABLES}
    try:
        assert set(packed_apply(threshold=0)) == every
        assert {thresholds()[name] for name in every} == {0}
        assert packed_apply(threshold=0) == []
        events_store(events=events(5, seed=30))
        assert storage_types("viewing_events") == {"Full": 1}
    finally:
        packed_apply()
    assert {thresholds()[name] for name in every} == {settings.CLICKHOUSE_PACKED_PART_BYTES}
    with pytest.raises(ValueError, match="CLICKHOUSE_PACKED_PART_BYTES must be 0 or more, not -1"):
        packed_apply(threshold=-1)
