"""Erasing a viewer: every endpoint then answers as the plain-Python references computed without
that viewer (several windows and zones), no table keeps a trace, erasing again removes 0, the
viewer does not come back over HTTP, Kafka or an insert racing the erasure; the command, the
records, the scopes."""

import io
import json
import random
import threading
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import Client

from analytics_site.access.models import ApiKey
from analytics_site.privacy.models import ErasureRecord
from tests import reference
from tests import reference_engagement as engagement
from tests.conftest import query
from tests.engagement_data import random_sessions
from tests.generator import events_generate, payload
from tests.kafka_broker import expected_analytics, make_loop, stored_analytics
from viewing import ddl, queries
from viewing.erasure import erasure_plan
from viewing.ingest_buffer import event_ingest
from viewing.services import events_store
from viewing.suppression import suppression_recheck

BASE = "/api/v1/analytics"
ZONES = ["UTC", "Asia/Kathmandu", "America/New_York"]


def client_with(*scopes):
    secret = ApiKey.objects.create_key(name="t", **{f"can_{s}": True for s in scopes})[1]
    return Client(HTTP_AUTHORIZATION=f"Api-Key {secret}")


def naive(moment):
    return moment.replace(tzinfo=None)


def post_events(client, events, seed=1):
    rng = random.Random(seed)
    bodies = [payload(e, rng) for e in events]
    for start in range(0, len(bodies), 5000):
        response = client.post(f"{BASE}/events/batch", bodies[start : start + 5000], content_type="application/json")
        assert response.status_code == 201, response.content


def get(client, path, **params):
    response = client.get(f"{BASE}/{path}", params)
    assert response.status_code == 200, (path, params, response.content)
    return response.json()


def erase(client, user):
    response = client.delete(f"{BASE}/users/{user}")
    assert response.status_code == 200, response.content
    return response.json()


def facts(events):
    """expected_analytics' input (tests/kafka_broker.py) from generator events."""
    return [{"user_id": str(e.user_id), "movie_id": str(e.movie_id), "type": e.event_type,
             "position_seconds": e.position_seconds, "event_time": e.event_time} for e in events]


def traces(user_id, ids):
    """Rows left of the user anywhere in the schema: by user_id, or by event id."""
    found = {}
    for table in ddl.TABLES:
        if table.name == "suppressed_users":
            continue
        if "user_id" in table.column_names:
            (n,), = query(f"SELECT count() FROM {table.name} WHERE user_id = %(u)s", {"u": user_id})
        elif "id" in table.column_names:
            (n,), = query(
                f"SELECT count() FROM {table.name} WHERE id IN (SELECT toUUID(arrayJoin(splitByChar(',', %(ids)s))))",
                {"ids": ",".join(i.hex for i in ids) or "00000000000000000000000000000000"},
            )
        else:  # aggregates mixing users: checked against the reference instead
            continue
        if n:
            found[table.name] = n
    return found


@pytest.fixture
def stored(ch, client, frozen_now):
    """Sessions (engagement) and generated events (the four classic metrics) over 10 days."""
    now = naive(frozen_now)
    events = random_sessions(now, seed=5, sessions=80) + events_generate(seed=8, count=700, now=now, days_back=9)
    post_events(client, events)
    assert query("SELECT count() FROM viewing_events") == [(len(events),)]
    return events


def busiest_session_user(events):
    with_session = [e.user_id for e in events if e.session_id is not None]
    return max(set(with_session), key=with_session.count)


def assert_every_endpoint_matches(client, events, today_of, users):
    """The analytics of `events` (the references) in every endpoint, windows and zones."""
    for tz in ZONES:
        today = today_of(tz)
        windows = [({"days": d}, reference.Window.of_days(d, today=today, tz=tz)) for d in (1, 3, 10, 30)]
        first, last = today - timedelta(days=6), today - timedelta(days=2)
        windows.append(({"from": first, "to": last}, reference.Window(first, last, tz)))
        for params, window in windows:
            params = {**params, "tz": tz}
            assert get(client, "content/popular", **params, limit=100) == reference.popular(
                events, window=window, limit=100)
            assert get(client, "trends", **params) == reference.trends(events, window=window)
            assert get(client, "peak-hours", **params) == reference.peak_hours(events, window=window)
            for user in users:
                assert get(client, f"user/{user}/stats", **params) == reference.user_stats(
                    events, user_id=user, window=window)
        window = windows[1][1]  # days=3
        assert get(client, "trends", days=3, tz=tz, interval="hour") == reference.trends(
            events, window=window, interval="hour")
    movies = sorted({e.movie_id for e in events}, key=str)
    for tz in ZONES:
        today = today_of(tz)
        for days in (1, 3, 10):
            first = today - timedelta(days=days - 1)
            assert get(client, "summary", days=days, tz=tz) == engagement.summary(
                events, first_day=first, last_day=today, tz=tz)
        first, last = today - timedelta(days=6), today - timedelta(days=1)
        window = {"from": first, "to": last, "tz": tz}
        assert get(client, "concurrency", **window, interval="hour") == engagement.concurrency(
            events, first_day=first, last_day=last, tz=tz, interval="hour")
        for movie in movies[:4]:
            assert get(client, f"content/{movie}/retention", **window) == engagement.retention(
                events, movie_id=movie, first_day=first, last_day=last, tz=tz)


def test_after_an_erasure_every_endpoint_answers_as_without_the_user(stored, client, frozen_now):
    events = stored
    erased = busiest_session_user(events)
    theirs = [e for e in events if e.user_id == erased]
    rest = [e for e in events if e.user_id != erased]
    assert len(theirs) > 20 and {e.event_time.date() for e in theirs} != {frozen_now.date()}
    before = stored_analytics(query)
    assert before == expected_analytics(facts(events))

    assert erase(client_with("erase"), erased) == {"user_id": str(erased), "events_deleted": len(theirs)}

    assert traces(erased, [e.id for e in theirs]) == {}
    assert stored_analytics(query) == expected_analytics(facts(rest))
    other = next(e.user_id for e in rest)

    def today_of(tz):
        return engagement.local(naive(frozen_now), tz).date()

    assert_every_endpoint_matches(client, rest, today_of, users=[erased, other])
    # Exports know nothing of the user either.
    exporter = client_with("export")
    response = exporter.get(f"{BASE}/users/{erased}/events")
    assert b"".join(response.streaming_content) == b""


def test_erasing_again_removes_nothing_and_both_are_recorded(stored, client):
    erased = busiest_session_user(stored)
    theirs = sum(e.user_id == erased for e in stored)
    eraser = client_with("erase")
    assert erase(eraser, erased)["events_deleted"] == theirs
    state = stored_analytics(query)
    assert erase(eraser, str(erased).upper().replace("-", "")) == {"user_id": str(erased), "events_deleted": 0}
    assert stored_analytics(query) == state
    key = ApiKey.objects.get(name="t", can_erase=True)
    records = list(ErasureRecord.objects.order_by("id").values_list("user_id", "events_deleted", "requested_by",
                                                                   "api_key_prefix"))
    assert records == [(erased, theirs, f"API key {key.prefix} (t)", key.prefix),
                       (erased, 0, f"API key {key.prefix} (t)", key.prefix)]
    assert all(r.seconds >= 0 for r in ErasureRecord.objects.all())


def test_the_users_events_sent_again_over_http_are_acknowledged_and_not_stored(stored, client):
    erased = busiest_session_user(stored)
    theirs = [e for e in stored if e.user_id == erased]
    erase(client_with("erase"), erased)
    state = stored_analytics(query)
    rng = random.Random(2)
    bodies = [payload(e, rng) for e in theirs]
    batch = client.post(f"{BASE}/events/batch", bodies, content_type="application/json")
    assert batch.status_code == 201 and batch.json() == {"accepted": len(bodies)}
    for body in bodies[:3]:
        assert client.post(f"{BASE}/events", body, content_type="application/json").status_code == 201
    new = {**bodies[0], "id": str(uuid.uuid4())}  # new activity, too
    assert client.post(f"{BASE}/events", new, content_type="application/json").status_code == 201
    assert stored_analytics(query) == state
    assert traces(erased, [e.id for e in theirs]) == {}


@pytest.mark.kafka
def test_the_users_events_replayed_from_kafka_are_committed_and_not_stored(ch, kafka):
    rng = random.Random(9)
    erased, kept = uuid.uuid4(), uuid.uuid4()
    movie = uuid.uuid4()
    sent = []
    for i in range(40):
        value = {"user_id": str(erased if i % 2 else kept), "movie_id": str(movie), "action": "start",
                 "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
        kafka.produce(kafka.topic("start"), value)
        sent.append(value)
    kafka.flush()

    def consume(group):
        return make_loop(kafka, group, batch_size=500, flush_interval=0.2).run(exit_on_idle=1)

    assert consume("first")["stored"] == 40
    call_command("erase_user", str(erased), stdout=io.StringIO())
    state = stored_analytics(query)
    # A new consumer group reads the topic from the start: every message again.
    stats = consume("replay")
    assert stats["consumed"] == 40 and stats["stored"] == 0
    assert kafka.committed(kafka.group("replay")) == kafka.produced_offsets()
    assert stored_analytics(query) == state
    assert query("SELECT count() FROM viewing_events WHERE user_id = %(u)s", {"u": erased}) == [(0,)]
    assert query("SELECT count() FROM viewing_events") == [(20,)]


def row(user_id, moment, **fields):
    return {"id": uuid.uuid4(), "user_id": user_id, "movie_id": fields.pop("movie_id", uuid.uuid4()),
            "event_type": fields.pop("event_type", "start"), "position_seconds": 0, "event_time": moment,
            "session_id": fields.pop("session_id", None), "metadata": "{}", **fields}


def test_an_ingest_running_during_the_erasure_cannot_bring_the_user_back(stored, frozen_now):
    erased = busiest_session_user(stored)
    now = naive(frozen_now)
    others = [uuid.uuid4() for _ in range(3)]
    movie = uuid.uuid4()
    acknowledged = []  # (user, moment, event_type) of every other user's acknowledged event
    stop = threading.Event()
    errors = []

    def batches():
        rng = random.Random(4)
        try:
            while not stop.is_set():
                batch = [row(rng.choice(others + [erased]), now - timedelta(minutes=rng.randrange(600)),
                             movie_id=movie) for _ in range(50)]
                events_store(events=batch)
                acknowledged.extend(e for e in batch if e["user_id"] != erased)
        except Exception as e:  # surfaced below
            errors.append(e)
        finally:
            connections.close_all()

    def singles():
        try:
            while not stop.is_set():
                event = row(erased, now - timedelta(minutes=1), movie_id=movie, session_id=uuid.uuid4())
                event_ingest(event=event)
        except Exception as e:
            errors.append(e)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=batches), threading.Thread(target=singles)]
    for t in threads:
        t.start()
    try:
        call_command("erase_user", str(erased), stdout=io.StringIO())
        stop.wait(0.5)  # the writers go on after the erasure, too
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert errors == [] and len(acknowledged) > 50
    assert query("SELECT count() FROM viewing_events WHERE user_id = %(u)s", {"u": erased}) == [(0,)]
    rest = [e for e in stored if e.user_id != erased]
    expected = facts(rest) + [{"user_id": str(e["user_id"]), "movie_id": str(e["movie_id"]), "type": "start",
                               "position_seconds": 0, "event_time": e["event_time"]} for e in acknowledged]
    assert stored_analytics(query) == expected_analytics(expected)
    assert traces(erased, []) == {}


def test_a_racing_insert_on_a_server_is_erased_by_the_writers_recheck(ch, frozen_now):
    """Several processes on a ClickHouse server: one stored the user's events after another
    suppressed and erased them. The re-check after its insert finds and erases them."""
    user, other = uuid.uuid4(), uuid.uuid4()
    now = naive(frozen_now)
    kept = row(other, now)
    events_store(events=[row(user, now), kept])
    call_command("erase_user", str(user), stdout=io.StringIO())
    # The other process's insert, which had checked the list before the erasure.
    late = row(user, now - timedelta(hours=1), session_id=uuid.uuid4())
    with connections["clickhouse"].cursor() as cursor:
        cursor.executemany(queries.INSERT_EVENTS, [tuple(late[c] for c in queries.EVENT_COLUMNS[:-1]) + (now,)])
    assert query("SELECT count() FROM viewing_events WHERE user_id = %(u)s", {"u": user}) == [(1,)]
    assert suppression_recheck(users=[other], embedded=False) == []
    assert suppression_recheck(users=[user, other], embedded=False) == [user]
    assert traces(user, [late["id"]]) == {}
    assert stored_analytics(query) == expected_analytics([
        {"user_id": str(other), "movie_id": str(kept["movie_id"]), "type": "start", "position_seconds": 0,
         "event_time": now}])
    assert ErasureRecord.objects.filter(requested_by__startswith="write path").count() == 1


def test_an_erasure_repeated_after_a_crash_mends_the_aggregates(stored, client):
    """The first attempt died after deleting the raw rows: the second finds the dates from the
    per-user aggregates and mends every aggregate."""
    erased = busiest_session_user(stored)
    query("DELETE FROM viewing_events WHERE user_id = %(u)s", {"u": erased})
    assert erase(client_with("erase"), erased)["events_deleted"] == 0
    rest = [e for e in stored if e.user_id != erased]
    assert stored_analytics(query) == expected_analytics(facts(rest))
    assert traces(erased, []) == {}


def test_every_table_of_the_registry_has_an_erasure_rule():
    plan = erasure_plan()
    placed = {t.name for t in plan.by_user + plan.by_ids + plan.rebuilt} | {"suppressed_users"}
    assert placed == set(ddl.DATA_TABLES)
    assert {t.name for t in plan.rebuilt} >= {"popular_content_daily", "events_daily", "trends_hourly"}
    assert {t.name for t in plan.by_user} >= {"viewing_events", "user_stats_daily"}


def test_each_rebuilt_aggregates_time_lies_on_its_events_utc_date(ch):
    """Rebuilding by UTC date is exact only if every row of a rebuilt aggregate comes from the
    events of one date: its time column (day, hour, bucket) maps into the events' date."""
    for table in erasure_plan().rebuilt:
        for view in (v for v in ddl.VIEWS if v.target is table):
            source = ("(SELECT * FROM viewing_events WHERE 0 UNION ALL SELECT generateUUIDv4(), generateUUIDv4(), "
                      "generateUUIDv4(), 'start', 0, toDateTime(%(t)s, 'UTC'), NULL, '{}', now())")
            select = view.select.strip().replace("%", "%%").replace("{source}", source)
            for moment in ("2026-11-28 00:00:00", "2026-11-28 23:59:59"):
                (day,), = query(f"SELECT DISTINCT toDate({table.ttl_column}) FROM ({select})", {"t": moment})
                assert str(day) == "2026-11-28", (table.name, moment)


def test_keys_without_the_erase_scope_staff_and_anonymous_are_refused(stored):
    erased = busiest_session_user(stored)
    staff = Client()
    staff.force_login(User.objects.create_user("ops", is_staff=True, is_superuser=True))
    for client in (client_with("read"), client_with("ingest"), client_with("read", "ingest", "export"), staff):
        response = client.delete(f"{BASE}/users/{erased}")
        assert response.status_code == 403 and "application/json" in response["Content-Type"]
    assert Client().delete(f"{BASE}/users/{erased}").status_code == 401
    assert query("SELECT count() FROM viewing_events WHERE user_id = %(u)s", {"u": erased}) != [(0,)]
    assert not ErasureRecord.objects.exists()
    assert client_with("erase").get(f"{BASE}/users/{erased}").status_code == 405


@pytest.mark.parametrize("bad", ["nope", "1' OR '1'='1", "%00"])
def test_a_malformed_user_id_is_a_400(ch, bad):
    response = client_with("erase").delete(f"{BASE}/users/{bad}")
    assert response.status_code == 400 and list(response.json()) == ["user_id"]


def test_the_command_erases_prints_and_records(stored):
    erased = busiest_session_user(stored)
    theirs = sum(e.user_id == erased for e in stored)
    out = io.StringIO()
    call_command("erase_user", str(erased), stdout=out)
    assert json.loads(out.getvalue()) == {"user_id": str(erased), "events_deleted": theirs}
    (record,) = ErasureRecord.objects.all()
    assert (record.user_id, record.events_deleted, record.requested_by, record.api_key_prefix) == (
        erased, theirs, "manage.py erase_user", "")
    with pytest.raises(CommandError, match="Not a UUID"):
        call_command("erase_user", "nope")


def test_the_admin_lists_erasures_read_only(stored):
    erased = busiest_session_user(stored)
    call_command("erase_user", str(erased), stdout=io.StringIO())
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    listing = admin.get("/admin/privacy/erasurerecord/")
    assert listing.status_code == 200 and str(erased) in listing.content.decode()
    assert admin.get(f"/admin/privacy/erasurerecord/?q={erased}").status_code == 200
    assert admin.get("/admin/privacy/erasurerecord/?q=not-a-uuid").status_code == 200
    record = ErasureRecord.objects.get()
    page = admin.get(f"/admin/privacy/erasurerecord/{record.pk}/change/")
    assert page.status_code == 200 and 'type="submit"' not in page.content.decode().split("<form")[-1]
    assert admin.get("/admin/privacy/erasurerecord/add/").status_code == 403
    assert admin.post(f"/admin/privacy/erasurerecord/{record.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ErasureRecord.objects.count() == 1


def test_dates_rebuilt_twice_to_the_same_rows_are_not_dropped_as_duplicate_inserts(stored, client):
    """The tables keep a deduplication window for retried inserts; a rebuild that computes the
    same rows as an earlier one (here: a leftover per-user row of a second user on the dates the
    first erasure rebuilt) must still be written after the dates' rows were deleted. (chdb 26.9
    does not deduplicate INSERT … SELECT by default; a server configured to would drop the
    second rebuild without the erasure's insert_deduplicate = 0.)"""
    erased = busiest_session_user(stored)
    eraser = client_with("erase")
    erase(eraser, erased)
    rest = [e for e in stored if e.user_id != erased]
    expected = expected_analytics(facts(rest))
    ghost = uuid.uuid4()
    for day in sorted({e.event_time.date() for e in stored if e.user_id == erased}):
        query("INSERT INTO user_stats_daily (user_id, day, movie_id, events, starts, finishes, watch_seconds) "
              "SELECT %(u)s, %(d)s, generateUUIDv4(), 0, 0, 0, 0", {"u": ghost, "d": day})
    assert erase(eraser, ghost)["events_deleted"] == 0
    assert erase(eraser, erased)["events_deleted"] == 0
    assert stored_analytics(query) == expected


def raw_facts():
    """expected_analytics' input from what the raw table holds."""
    return [{"user_id": str(u), "movie_id": str(m), "type": t, "position_seconds": p, "event_time": at}
            for u, m, t, p, at in query(
                "SELECT user_id, movie_id, event_type, position_seconds, event_time FROM viewing_events")]


@pytest.mark.embedded
def test_an_erasure_waits_for_a_half_written_insert_to_be_completed(stored, client, frozen_now):
    """An insert whose raw rows were stored while a view refused them is completed before the
    next insert; an erasure in between would rebuild those views from the raw table and the
    completion would then count the rows twice. So the erasure answers 503 until it is done."""
    erased = busiest_session_user(stored)
    eraser = client_with("erase")
    with connections["clickhouse"].cursor() as cursor:
        cursor.execute("ALTER TABLE events_daily ADD CONSTRAINT fault CHECK day < '2000-01-01'")
        try:
            with pytest.raises(Exception, match="VIOLATED_CONSTRAINT|violated"):
                events_store(events=[row(uuid.uuid4(), naive(frozen_now))])
        finally:
            cursor.execute("ALTER TABLE events_daily DROP CONSTRAINT fault")
    # The cause is gone, the half-written insert not completed yet (no insert came since).
    refused = eraser.delete(f"{BASE}/users/{erased}")
    assert refused.status_code == 503 and "half-way" in refused.json()["detail"]
    with pytest.raises(CommandError, match="half-way"):
        call_command("erase_user", str(erased), stdout=io.StringIO())
    assert not ErasureRecord.objects.exists()
    events_store(events=[row(uuid.uuid4(), naive(frozen_now))])  # completes the half-written one
    assert erase(eraser, erased)["events_deleted"] == sum(e.user_id == erased for e in stored)
    assert query("SELECT count() FROM viewing_events WHERE user_id = %(u)s", {"u": erased}) == [(0,)]
    assert stored_analytics(query) == expected_analytics(raw_facts())
