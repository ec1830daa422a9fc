"""Insert faults on the real engine, for every way in: what is acknowledged is stored, in the
raw table and in every table it feeds, exactly once; what is refused is acknowledged nowhere;
once the cause is gone a retry stores it exactly once, also after a half-written insert.

Each fault is made for real in the test database and removed afterwards: a CHECK constraint
on the raw table; the same on a table a materialized view feeds (events_daily), and on the
id look-up's table (event_ids), so the raw table takes the rows and a view does not; a memory
limit for the insert (max_memory_usage); too many parts (parts_to_throw_insert, merges
stopped) on the raw table and on a view's table. The full disk needs a data directory of its
own: tests/analytics_site/test_full_disk.py. Kafka: test_insert_faults_kafka.py.
"""

import random
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connections

from analytics_site.exceptions import StoreFailed
from tests.aggregates import STORED_SQL, stored_events, tables_and_reference
from tests.conftest import query
from tests.kafka_broker import make_loop, run_in_thread, wait_until
from viewing import ddl
from viewing.aggregates import aggregates_verify
from viewing.ddl_objects import INSERT_DEDUPLICATION
from viewing.generator import event_batches

pytestmark = pytest.mark.embedded

BASE = "/api/v1/analytics"


def execute(sql):
    with connections["clickhouse"].cursor() as cursor:
        cursor.execute(sql)


@contextmanager
def constraint(table, check):
    execute(f"ALTER TABLE {table} ADD CONSTRAINT fault CHECK {check}")
    try:
        yield
    finally:
        execute(f"ALTER TABLE {table} DROP CONSTRAINT fault")


@contextmanager
def too_many_parts(table):
    # One active part in a partition is already too many: the next insert there is refused.
    execute(f"SYSTEM STOP MERGES {table}")
    execute(f"ALTER TABLE {table} MODIFY SETTING parts_to_delay_insert = 1, parts_to_throw_insert = 1")
    try:
        yield
    finally:
        execute(f"ALTER TABLE {table} RESET SETTING parts_to_delay_insert, parts_to_throw_insert")
        execute(f"SYSTEM START MERGES {table}")


@contextmanager
def memory_limit(settings):
    # Small allocations are tracked too, so the insert itself runs out.
    settings.CLICKHOUSE_INSERT_SETTINGS = {"max_memory_usage": 100_000, "max_untracked_memory": 1024}
    try:
        yield
    finally:
        settings.CLICKHOUSE_INSERT_SETTINGS = {}


# name: (make the fault, ClickHouse's error name, whether the raw table takes the rows)
FAULTS = {
    "constraint": (lambda s: constraint("viewing_events", "event_time < '2000-01-01'"), "VIOLATED_CONSTRAINT", False),
    "view_fails": (lambda s: constraint("events_daily", "day < '2000-01-01'"), "VIOLATED_CONSTRAINT", True),
    "lookup_view_fails": (lambda s: constraint("event_ids", "event_time < '2000-01-01'"), "VIOLATED_CONSTRAINT", True),
    "memory": (memory_limit, "MEMORY_LIMIT_EXCEEDED", False),
    "too_many_parts": (lambda s: too_many_parts("viewing_events"), "TOO_MANY_PARTS", False),
    "too_many_parts_in_a_view": (lambda s: too_many_parts("trends_hourly"), "TOO_MANY_PARTS", True),
}


def make_events(rng, n):
    """Events of the last 30 minutes (so the realtime table holds them too), a few users and
    movies so aggregates share rows, sessions for most."""
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    users = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(3)]
    movies = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(2)]
    sessions = [None] + [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(3)]
    return [
        {
            "id": uuid.UUID(int=rng.getrandbits(128), version=4),
            "user_id": rng.choice(users),
            "movie_id": rng.choice(movies),
            "event_type": rng.choice(["start", "progress", "finish"]),
            "position_seconds": rng.randrange(7200),
            "event_time": now - timedelta(seconds=rng.randrange(1800)),
            "session_id": rng.choice(sessions),
        }
        for _ in range(n)
    ]


def as_json(e):
    return {**{k: str(v) for k, v in e.items() if k not in ("position_seconds", "event_time", "session_id")},
            "position_seconds": e["position_seconds"], "event_time": e["event_time"].isoformat() + "Z",
            "session_id": None if e["session_id"] is None else str(e["session_id"])}


def send(client, way, events):
    """The answers to `events` sent one way: a list of (status, body)."""
    if way == "http_single":
        answers = [client.post(f"{BASE}/events", as_json(e), content_type="application/json") for e in events]
    else:
        answers = [client.post(f"{BASE}/events/batch", [as_json(e) for e in events], content_type="application/json")]
    return [(a.status_code, a.json()) for a in answers]


def no_drift():
    """verify_aggregates' own check over the days the tests write: nothing to mend."""
    today = datetime.now(UTC).date()
    return aggregates_verify(days=[today - timedelta(days=n) for n in range(3)]) == []


def raw_ids():
    return {row[0] for row in query("SELECT toString(id) FROM viewing_events")}


def ids(events):
    return {str(e["id"]) for e in events}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("way", ["http_single", "http_batch"])
def test_an_insert_fault_over_http_acknowledges_nothing_and_a_retry_stores_once(ch, client, settings, way, fault):
    make_fault, cause, half_written = FAULTS[fault]
    rng = random.Random(f"{way}:{fault}")
    before, refused = make_events(rng, 8), make_events(rng, 8)
    assert {status for status, _ in send(client, way, before)} == {201}
    with make_fault(settings):
        for attempt in range(2):  # a retry while the cause is there is refused as well
            for status, body in send(client, way, refused):
                assert (status, body) == (503, {"detail": StoreFailed.default_detail, "cause": cause}), attempt
            if half_written:  # the raw table took rows the views lack: nothing of them acknowledged
                assert ids(before) <= raw_ids() <= ids(before + refused)
            else:
                stored, expected = tables_and_reference(before)
                assert stored == expected
    assert {status for status, _ in send(client, way, refused)} == {201}
    stored, expected = tables_and_reference(before + refused)
    assert stored == expected
    # Sent once more: acknowledged again, stored once.
    assert {status for status, _ in send(client, way, before + refused)} == {201}
    assert tables_and_reference(before + refused)[0] == expected
    assert no_drift()


def generate(seed):
    call_command("generate_events", events=300, days=1, users=20, movies=5, seed=seed, batch_size=100,
                 stdout=StringIO(), stderr=StringIO())


@pytest.mark.parametrize("fault", FAULTS)
def test_an_insert_fault_stops_generate_events_with_its_cause_and_a_rerun_stores_once(ch, settings, fault):
    make_fault, cause, half_written = FAULTS[fault]
    expected_ids = {seed: {str(e["id"]) for batch in event_batches(events=300, days=1, users=20, movies=5, seed=seed)
                           for e in batch} for seed in (1, 2)}
    generate(1)
    with make_fault(settings):
        with pytest.raises(CommandError) as error:
            generate(2)
        assert str(error.value).startswith(f"Storing events failed ({cause}) after 0 new events were stored: ")
        assert "\n" not in str(error.value)
        if not half_written:
            assert raw_ids() == expected_ids[1]
    generate(2)
    generate(2)
    # The generator's own ids, each once; every table follows the raw table exactly.
    assert query("SELECT count() FROM viewing_events") == [(600,)]
    assert raw_ids() == expected_ids[1] | expected_ids[2]
    stored, expected = tables_and_reference(stored_events())
    assert stored == expected
    assert no_drift()


def dedup_window(table):
    (engine_full,), = query("SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = %(t)s",
                            {"t": table})
    return "non_replicated_deduplication_window = 1000" in engine_full


def test_the_deduplication_window_migration_reverses_on_a_database_holding_events(ch, client):
    events = make_events(random.Random(5), 20)
    assert send(client, "http_batch", events) == [(201, {"accepted": 20})]
    fed = ["viewing_events", "event_ids", "popular_content_daily", "user_stats_daily", "events_daily",
           "view_segments", "recent_events", "events_quarter_hourly"]  # altered by 0005 (events_hourly: dropped)
    assert all(dedup_window(table) for table in fed)
    try:
        call_command("migrate", "viewing", "0004", database="clickhouse", verbosity=0)
        assert not any(dedup_window(table) for table in fed)
    finally:
        call_command("migrate", "viewing", database="clickhouse", verbosity=0)
    assert all(dedup_window(table) for table in fed)
    stored, expected = tables_and_reference(events)
    assert stored == expected


def test_every_table_the_raw_events_feed_is_deduplicated_and_checked():
    # A new view's table without the window would count a completed insert twice; one the
    # reference does not know would go unchecked by the fault tests.
    fed = {ddl.VIEWING_EVENTS.name} | {view.target.name for view in ddl.VIEWS if view.source is ddl.VIEWING_EVENTS}
    for name in fed:
        assert INSERT_DEDUPLICATION in ddl.BY_NAME[name].settings, name
    assert set(STORED_SQL) == fed


def as_message(e):
    value = {"event_id": str(e["id"]), "user_id": str(e["user_id"]), "movie_id": str(e["movie_id"]),
             "action": e["event_type"], "timestamp": e["event_time"].isoformat() + "Z",
             "position_seconds": e["position_seconds"]}
    if e["session_id"] is not None:
        value["session_id"] = str(e["session_id"])
    return value


@pytest.mark.kafka
@pytest.mark.parametrize("fault", FAULTS)
def test_an_insert_fault_under_kafka_commits_nothing_and_goes_on_exactly_once(ch, kafka, settings, caplog, fault):
    make_fault, cause, _half_written = FAULTS[fault]
    rng = random.Random(f"kafka:{fault}")
    before, refused = make_events(rng, 30), make_events(rng, 30)
    loop = make_loop(kafka, batch_size=20)
    thread, result = run_in_thread(loop, exit_on_idle=1)
    try:
        for e in before:
            kafka.produce(kafka.topic("start"), as_message(e))
        committed = kafka.produced_offsets()
        wait_until(lambda: kafka.committed(kafka.group()) == committed or "error" in result, 60, "the first commit")
        with make_fault(settings):
            for e in refused:
                kafka.produce(kafka.topic("start"), as_message(e))
            kafka.flush()
            wait_until(lambda: loop.stats.failed_flushes >= 3 or "error" in result, 60, lambda: loop.stats.snapshot())
            assert kafka.committed(kafka.group()) == committed  # nothing of the refused batches
            assert loop.stats.snapshot()["state"] == "retrying"
        thread.join(60)
    finally:
        loop.request_stop()
        thread.join(30)
    assert not thread.is_alive() and "error" not in result, result
    assert kafka.committed(kafka.group()) == kafka.produced_offsets()
    # One line per failed attempt (each followed by a back-off), naming ClickHouse's error.
    failures = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Storing ")
                and "failed (attempt" in r.getMessage()]
    assert len(failures) == result["stats"]["failed_flushes"] >= 3
    assert all(cause in line for line in failures), failures[0]
    stored, expected = tables_and_reference(before + refused)
    assert stored == expected
    assert no_drift()
