"""RETENTION_DAYS is applied to every table's TTL by migrate, also after it changes."""

from django.core.management import call_command

from tests.conftest import query
from viewing.ddl import TTL_COLUMNS
from viewing.retention import retention_apply


def ttl_days():
    rows = query(
        "SELECT name, extract(engine_full, 'toIntervalDay\\\\((\\\\d+)\\\\)') FROM system.tables "
        "WHERE database = currentDatabase() AND name IN %(names)s ORDER BY name",
        {"names": tuple(TTL_COLUMNS)},
    )
    return {name: int(days) for name, days in rows}


def test_changing_retention_alters_every_ttl_and_back(ch, settings):
    assert set(ttl_days().values()) == {365}
    settings.RETENTION_DAYS = 30
    call_command("migrate", database="clickhouse", verbosity=0)
    assert ttl_days() == {name: 30 for name in TTL_COLUMNS}
    settings.RETENTION_DAYS = 365
    assert sorted(retention_apply()) == sorted(TTL_COLUMNS)
    assert set(ttl_days().values()) == {365}
    assert retention_apply() == []  # nothing to do when already equal
