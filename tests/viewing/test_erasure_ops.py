"""Erasing a viewer, the operations around it: every table of the registry has an erasure rule,
rebuilt dates are exact, who may erase (scopes, staff, anonymous), malformed ids, the
command, the admin's read-only records, rebuilds that repeat rows, and an erasure waiting for
a half-written insert."""

import io
import json
import uuid

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import Client

from analytics_site.privacy.models import ErasureRecord
from tests.conftest import query
from tests.kafka_broker import expected_analytics, stored_analytics
from tests.viewing.erasure_support import (
    BASE,
    busiest_session_user,
    client_with,
    erase,
    facts,
    naive,
    raw_facts,
    row,
    stored_events,
)
from viewing import ddl
from viewing.erasure import erasure_plan
from viewing.services import events_store


@pytest.fixture
def stored(ch, client, frozen_now):
    return stored_events(client, frozen_now)


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
