from tests.conftest import query


def test_clickhouse_answers(ch):
    assert query("SELECT count() FROM viewing_events") == [(0,)]
