"""The benchmark's raw-table versions of the engagement statements give the service's answers
(otherwise the comparison in docs/performance.md would compare different work)."""

from datetime import UTC, datetime, time, timedelta

from bench.sql_engagement import ENDPOINT_SQL
from tests.conftest import query
from tests.engagement_data import edge_cases, random_sessions
from tests.viewing.test_engagement_migration import rows
from viewing import clock
from viewing.services import events_store


def naive(rows):
    """The driver gives some DateTime('UTC') values aware, others naive."""
    return [tuple(v.replace(tzinfo=None) if isinstance(v, datetime) else v for v in row) for row in rows]


def test_raw_versions_answer_the_same(ch):
    moment = datetime.now(UTC).replace(microsecond=0)
    now = moment.replace(tzinfo=None)
    events = edge_cases(now - timedelta(minutes=30))[0] + random_sessions(now, seed=4, sessions=120, days_back=5)
    events_store(events=rows(events))
    # The date the day windows end on: just after UTC midnight today holds minutes that may
    # have no event, so then the day before (realtime still reads the real now: its table
    # keeps only recent events).
    today = datetime.combine((now - timedelta(hours=2)).date(), time())
    window = {"start": today - timedelta(days=4), "end": today + timedelta(days=1)}
    movie = max({e.movie_id for e in events}, key=lambda m: sum(e.movie_id == m for e in events))
    params = {
        "summary": window,
        "retention": {**window, "movie_id": movie, "bucket": 60},
        "concurrency_hour_1d": {"start": today, "end": today + timedelta(days=1)},
        "concurrency_day_30d": window,
        "realtime": {"since": now - timedelta(seconds=3600), "as_of": now},
    }
    assert set(params) == set(ENDPOINT_SQL)
    with clock.frozen(moment):
        for name, (service, raw) in ENDPOINT_SQL.items():
            service, raw = (s if isinstance(s, tuple) else (s,) for s in (service, raw))
            answers = [[naive(query(s, params[name])) for s in statements] for statements in (service, raw)]
            assert answers[0] == answers[1], name
            assert any(rows_ != [] and rows_ != [(0, 0, 0)] for rows_ in answers[0]), name
