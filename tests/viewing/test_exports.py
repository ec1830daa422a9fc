"""Exports: a viewer's events and a window's events, parsed back (Python csv, JSON lines, the
Parquet file read by the engine) and compared with the stored events and with the generator's
truth; parameters, scopes, attachments, streaming."""

import csv
import io
import json
import os
import random
import tempfile
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client

from analytics_site.access.models import ApiKey
from tests.conftest import query
from tests.generator import events_generate
from viewing.exports import local_window
from viewing.services import events_store

BASE = "/api/v1/analytics"
COLUMNS = ["id", "user_id", "movie_id", "event_type", "position_seconds", "event_time", "session_id",
           "metadata", "created_at"]


def client_with(*scopes):
    secret = ApiKey.objects.create_key(name="t", **{f"can_{s}": True for s in scopes})[1]
    return Client(HTTP_AUTHORIZATION=f"Api-Key {secret}")


@pytest.fixture
def exporter(db):
    return client_with("export")


def as_row(event):
    return {
        "id": event.id, "user_id": event.user_id, "movie_id": event.movie_id, "event_type": event.event_type,
        "position_seconds": event.position_seconds, "event_time": event.event_time, "session_id": event.session_id,
        "metadata": json.dumps(event.metadata or {}),
    }


@pytest.fixture
def stored(ch):
    """~600 events of 10 users over 12 days up to now, stored; the generator's truth."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    events = events_generate(seed=21, count=600, now=now, days_back=11)
    events_store(events=[as_row(e) for e in events])
    return events


def stored_rows(where="1", params=None):
    """The stored events as an export writes them (text form), oldest first, ties by id."""
    rows = query(
        f"SELECT {', '.join(COLUMNS)} FROM viewing_events WHERE {where} ORDER BY event_time, id", params
    )
    return [text_row(dict(zip(COLUMNS, row, strict=True))) for row in rows]


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def text_row(row):
    return {
        **{k: str(row[k]) for k in ("id", "user_id", "movie_id")},
        "event_type": row["event_type"],
        "position_seconds": row["position_seconds"],
        "event_time": iso(row["event_time"]),
        "session_id": None if row["session_id"] is None else str(row["session_id"]),
        "metadata": row["metadata"],
        "created_at": iso(row["created_at"]),
    }


def download(client, path, **params):
    response = client.get(f"{BASE}/{path}", params)
    assert response.status_code == 200, response.content
    assert response.streaming
    return response, b"".join(response.streaming_content)


def parse_csv(body):
    text = body.decode()
    assert text.endswith("\r\n") or text == ""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert reader.fieldnames == COLUMNS
    return [
        {**row, "position_seconds": int(row["position_seconds"]), "session_id": row["session_id"] or None}
        for row in reader
    ]


def parse_ndjson(body):
    lines = body.decode().splitlines()
    rows = [json.loads(line) for line in lines]
    assert all(list(row) == COLUMNS for row in rows)
    return rows


def parse_parquet(body):
    """The Parquet file read back by the engine."""
    fd, path = tempfile.mkstemp(suffix=".parquet")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        rows = query(f"SELECT {', '.join(COLUMNS)} FROM file(%(path)s, Parquet)", {"path": path})
    finally:
        os.unlink(path)
    return [text_row(dict(zip(COLUMNS, row, strict=True))) for row in rows]


PARSERS = {"csv": parse_csv, "ndjson": parse_ndjson, "parquet": parse_parquet}


@pytest.mark.parametrize("output", ["ndjson", "csv"])
def test_a_users_export_is_every_stored_event_of_theirs_oldest_first(stored, exporter, output):
    user = stored[0].user_id
    response, body = download(exporter, f"users/{user}/events", format=output)
    rows = PARSERS[output](body)
    assert rows == stored_rows("user_id = %(u)s", {"u": user})
    truth = sorted((e for e in stored if e.user_id == user), key=lambda e: (e.event_time, str(e.id)))
    assert [r["id"] for r in rows] == [str(e.id) for e in truth]
    assert [json.loads(r["metadata"]) for r in rows] == [e.metadata or {} for e in truth]
    assert response["Content-Disposition"] == f'attachment; filename="user_{user}_events.{output}"'
    assert response["Content-Type"] == {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}[output]


def test_a_user_without_events_gets_an_empty_file_and_ndjson_is_the_default(stored, exporter):
    response, body = download(exporter, f"users/{uuid.uuid4()}/events")
    assert body == b"" and response["Content-Type"] == "application/x-ndjson"
    _, body = download(exporter, f"users/{uuid.uuid4()}/events", format="csv")
    assert body.decode() == ",".join(f'"{c}"' for c in COLUMNS) + "\r\n"


@pytest.mark.parametrize("output", ["csv", "ndjson", pytest.param("parquet", marks=pytest.mark.embedded)])
@pytest.mark.parametrize("tz", ["UTC", "Asia/Kathmandu", "America/New_York"])
def test_a_window_export_is_the_windows_events_in_every_format(stored, exporter, output, tz):
    today = datetime.now(ZoneInfo(tz)).date()
    first, last = today - timedelta(days=5), today - timedelta(days=1)
    response, body = download(exporter, "events/export", **{"from": first, "to": last, "tz": tz, "format": output})
    rows = PARSERS[output](body)
    start, end = local_window(date_from=first, date_to=last, tz=tz)
    assert rows == stored_rows("event_time >= %(s)s AND event_time < %(e)s", {"s": start, "e": end})
    # The generator's truth, by local date in Python.
    expected = {str(e.id) for e in stored
                if first <= e.event_time.replace(tzinfo=UTC).astimezone(ZoneInfo(tz)).date() <= last}
    assert {r["id"] for r in rows} == expected and len(rows) == len(expected) > 0
    assert response["Content-Disposition"] == f'attachment; filename="events_{first}_{last}.{output}"'


def test_filters_narrow_a_window_export(stored, exporter):
    today = datetime.now(UTC).date()
    window = {"from": today - timedelta(days=11), "to": today, "format": "ndjson"}
    user, movie = stored[0].user_id, stored[1].movie_id
    for params, where in [
        ({"user_id": str(user).upper()}, "user_id = %(u)s"),
        ({"movie_id": movie}, "movie_id = %(m)s"),
        ({"event_type": "stream.stop"}, "event_type = 'finish'"),
        ({"user_id": user, "movie_id": movie, "event_type": "start"},
         "user_id = %(u)s AND movie_id = %(m)s AND event_type = 'start'"),
    ]:
        _, body = download(exporter, "events/export", **window, **params)
        expected = stored_rows(where, {"u": user, "m": movie})
        assert parse_ndjson(body) == expected and expected
    _, everything = download(exporter, "events/export", **window)
    assert len(parse_ndjson(everything)) == len(stored)


def test_a_large_export_comes_in_several_pieces(ch, exporter):
    user = store_many(60_000)
    response = exporter.get(f"{BASE}/users/{user}/events", {"format": "csv"})
    pieces = list(response.streaming_content)
    assert len(pieces) > 2  # the engine's blocks, not one materialized result
    rows = parse_csv(b"".join(pieces))
    assert len(rows) == 60_000 and rows == stored_rows("user_id = %(u)s", {"u": user})


def test_keys_without_the_export_scope_and_staff_sessions_are_refused(stored):
    staff = Client()
    staff.force_login(User.objects.create_user("ops", is_staff=True))
    user = stored[0].user_id
    window = {"from": date.today(), "to": date.today()}
    for client in (client_with("read"), client_with("ingest"), client_with("read", "ingest", "erase"), staff):
        for path, params in ((f"users/{user}/events", {}), ("events/export", window)):
            response = client.get(f"{BASE}/{path}", params)
            assert response.status_code == 403, (path, response.content)
            assert "application/json" in response["Content-Type"]
    assert Client().get(f"{BASE}/users/{user}/events").status_code == 401


BAD_WINDOWS = [
    ({}, "from"),
    ({"from": "2026-11-01"}, "to"),
    ({"from": "2026-11-02", "to": "2026-11-01"}, "to"),
    ({"from": "2025-01-01", "to": "2026-01-02"}, "to"),  # 367 dates
    ({"from": "2026-11-31", "to": "2026-12-01"}, "from"),
    ({"from": "1969-12-31", "to": "1970-01-05"}, "from"),  # before what a DateTime holds
    ({"from": "2106-02-01", "to": "2106-02-07"}, "to"),
    ({"from": "2026-11-01", "to": "2026-11-02", "tz": "Mars/Olympus"}, "tz"),
    ({"from": "2026-11-01", "to": "2026-11-02", "tz": "../../etc/passwd"}, "tz"),
    ({"from": "2026-11-01", "to": "2026-11-02", "format": "xlsx"}, "format"),
    ({"from": "2026-11-01", "to": "2026-11-02", "user_id": "nope"}, "user_id"),
    ({"from": "2026-11-01", "to": "2026-11-02", "movie_id": "1' OR '1'='1"}, "movie_id"),
    ({"from": "2026-11-01", "to": "2026-11-02", "event_type": "rewind"}, "event_type"),
]


@pytest.mark.parametrize("params, field", BAD_WINDOWS, ids=[f for _, f in BAD_WINDOWS])
def test_bad_window_parameters_are_400s_naming_them(ch, exporter, params, field):
    response = exporter.get(f"{BASE}/events/export", params)
    assert response.status_code == 400
    assert field in response.json()


def test_bad_user_export_parameters_are_400s(ch, exporter):
    assert list(exporter.get(f"{BASE}/users/nope/events").json()) == ["user_id"]
    assert list(exporter.get(f"{BASE}/users/{uuid.uuid4()}/events", {"format": "parquet"}).json()) == ["format"]


def test_a_window_of_366_dates_and_future_dates_are_allowed(stored, exporter):
    today = datetime.now(UTC).date()
    _, body = download(exporter, "events/export", **{"from": today - timedelta(days=365), "to": today})
    assert len(parse_csv(body)) == len(stored)
    _, body = download(exporter, "events/export", **{"from": today + timedelta(days=2), "to": today + timedelta(days=3)})
    assert parse_csv(body) == []


def store_many(n, *, user=None):
    rng = random.Random(n)
    user = user or uuid.uuid4()
    base = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(days=1)
    events_store(events=[
        {"id": uuid.UUID(int=rng.getrandbits(128), version=4), "user_id": user, "movie_id": uuid.uuid4(),
         "event_type": "progress", "position_seconds": i, "event_time": base + timedelta(seconds=i % 3600),
         "session_id": None, "metadata": json.dumps({"n": i})}
        for i in range(n)
    ])
    return user


def export_leftovers():
    """Writer threads and pipe folders of exports still around."""
    folders = [n for n in os.listdir(tempfile.gettempdir()) if n.startswith("export-")]
    return [t.name for t in threading.enumerate() if t.name == "export-writer"], folders


@pytest.mark.embedded
def test_a_client_leaving_mid_download_stops_the_export(ch, exporter):
    user = store_many(60_000)
    before = export_leftovers()
    response = exporter.get(f"{BASE}/users/{user}/events", {"format": "ndjson"})
    pieces = iter(response.streaming_content)
    assert json.loads(next(pieces).split(b"\n")[0])["user_id"] == str(user)
    assert export_leftovers()[0] == before[0] + ["export-writer"]  # the engine is still writing
    response.close()  # what Django does when the client goes away
    assert export_leftovers() == before


@pytest.mark.embedded
def test_an_engine_error_before_the_first_byte_is_a_json_503(ch, exporter, caplog):
    with connections["clickhouse"].cursor() as cursor:
        cursor.execute("DETACH TABLE viewing_events")
    try:
        for path, params in ((f"users/{uuid.uuid4()}/events", {}), ("events/export", {"from": date.today(),
                                                                                      "to": date.today()})):
            response = exporter.get(f"{BASE}/{path}", params)
            assert response.status_code == 503
            assert response.json() == {"detail": "The analytics storage (ClickHouse) is unavailable; try again."}
    finally:
        with connections["clickhouse"].cursor() as cursor:
            cursor.execute("ATTACH TABLE viewing_events")
    assert "UNKNOWN_TABLE" in caplog.text
    assert export_leftovers()[0] == []
