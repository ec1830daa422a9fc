"""CSV answers of every analytics endpoint (Accept: text/csv or ?format=csv): parsed back, the
rows equal the JSON's rows (trends compared: both series, each row led by its own); an empty
list is its header; errors stay JSON."""

import csv
import io
import random
import uuid
from datetime import timedelta

import pytest

from tests.generator import Event, payload, seeded_uuid
from tests.viewing.test_api_reference import BASE, post_batch
from tests.viewing.test_api_timezones import get
from viewing import clock

ENDPOINTS = [
    ("content/popular", "popular", "items"),
    ("trends", "trends", "trends"),
    ("peak-hours", "peak_hours", "peak_hours"),
    ("user/{user}/stats", "user_stats", None),
]


@pytest.mark.parametrize("path, name, rows", ENDPOINTS)
@pytest.mark.parametrize("how", ["accept", "format"])
@pytest.mark.parametrize("params", [{"days": 7, "tz": "Asia/Kathmandu"},
                                    {"from": "2026-01-01", "to": "2026-01-02", "tz": "America/New_York"},
                                    {"days": 2, "interval": "hour", "compare": "previous_period"}])
def test_csv_rows_equal_the_json_rows(ch, client, frozen_now, path, name, rows, how, params):
    rng = random.Random(9)
    user = uuid.uuid4()
    now = frozen_now.replace(tzinfo=None)
    events = [Event(id=seeded_uuid(rng), user_id=user, movie_id=seeded_uuid(rng), event_type=t, position_seconds=5,
                    event_time=now - timedelta(hours=h)) for h in range(0, 40, 3) for t in ("start", "finish")]
    post_batch(client, [payload(e, rng, time_format="iso_z") for e in events])
    path = path.format(user=user)
    body = get(client, path, **params)
    if how == "accept":
        response = client.get(f"{BASE}/{path}", params, HTTP_ACCEPT="text/csv")
    else:
        response = client.get(f"{BASE}/{path}", {**params, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{name}_{body["from"]}_{body["to"]}.csv"'
    parsed = list(csv.reader(io.StringIO(response.content.decode("utf-8"), newline="")))
    assert parsed == expected_csv(body, rows, empty_header=parsed[0])
    assert response.content.endswith(b"\r\n")


def expected_csv(body, rows, *, empty_header):
    """The rows the CSV of an answer must parse into: a header of the JSON fields, then each
    entry of the list `rows` (the answer itself without one); a trends answer with `previous`
    leads every row with the list it comes from, the previous period's entries after. An empty
    list has no fields to name: its header is `empty_header`."""
    lists = [rows, "previous"] if rows == "trends" and "previous" in body else [rows]
    entries = [(name, row) for name in lists for row in (body[name] if name else [body])]
    if not entries:
        return [empty_header]
    columns = [c for c, v in entries[0][1].items() if not isinstance(v, (list, dict))]
    lead = (lambda name: [name]) if len(lists) > 1 else (lambda name: [])
    return [lead("series") + columns] + [
        lead(name) + ["" if row[c] is None else str(row[c]) for c in columns] for name, row in entries
    ]


@pytest.mark.parametrize("tz", ["UTC", "Asia/Kathmandu", "America/New_York"])
@pytest.mark.parametrize("interval", ["day", "hour", "week"])
def test_csv_of_trends_compared_holds_both_periods(ch, client, frozen_now, tz, interval):
    """compare=previous_period: the trends rows, then the previous period's rows, each led by
    its series; parsed back they are exactly the JSON's two lists, numbers included."""
    rng = random.Random(14)
    users, movie = [seeded_uuid(rng) for _ in range(3)], seeded_uuid(rng)
    now = frozen_now.replace(tzinfo=None)
    events = [Event(id=seeded_uuid(rng), user_id=users[h % 3], movie_id=movie, event_type=t, position_seconds=5,
                    event_time=now - timedelta(hours=h, minutes=7)) for h in range(0, 90, 5) for t in ("start", "finish")]
    post_batch(client, [payload(e, rng, time_format="iso_z") for e in events])
    params = {"tz": tz, "days": 2, "interval": interval, "compare": "previous_period"}
    body = get(client, "trends", **params)
    response = client.get(f"{BASE}/trends", {**params, "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    parsed = list(csv.DictReader(io.StringIO(response.content.decode("utf-8"), newline="")))
    key = "date" if interval == "day" else "start"
    for series in ("trends", "previous"):
        rows = [row for row in parsed if row["series"] == series]
        assert [{k: (v if k == key else int(v)) for k, v in row.items() if k != "series"} for row in rows] == [
            {k: (str(v) if k == key else v) for k, v in entry.items()} for entry in body[series]
        ]
    assert sum(entry["total_events"] for entry in body["previous"]) > 0  # the previous period has data
    assert [row["series"] for row in parsed] == ["trends"] * len(body["trends"]) + ["previous"] * len(body["previous"])
    assert list(csv.reader(io.StringIO(response.content.decode(), newline="")))[0][0] == "series"


def assert_csv_is_the_json(response, body, rows):
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    parsed = list(csv.reader(io.StringIO(response.content.decode("utf-8"), newline="")))
    expected = body[rows] if rows else [body]
    assert expected, "a test of CSV rows needs rows"
    columns = [c for c, v in expected[0].items() if not isinstance(v, (list, dict))]
    assert parsed[0] == columns
    assert parsed[1:] == [["" if row[c] is None else str(row[c]) for c in columns] for row in expected]


@pytest.mark.parametrize(
    "path, name, rows",
    [("summary", "summary", None), ("content/{movie}/retention", "retention", "curve"),
     ("concurrency", "concurrency", "concurrency"), ("realtime", "realtime", "top_movies")],
)
def test_csv_of_the_engagement_endpoints_is_their_json(ch, client, frozen_now, path, name, rows):
    rng = random.Random(8)
    movie, now = seeded_uuid(rng), frozen_now.replace(tzinfo=None)
    events = [Event(id=seeded_uuid(rng), user_id=seeded_uuid(rng), movie_id=movie, event_type=kind,
                    position_seconds=position, event_time=now - timedelta(minutes=minutes), session_id=session)
              for session in [seeded_uuid(rng) for _ in range(3)]
              for kind, position, minutes in (("start", 0, 50), ("progress", 600, 40), ("progress", 1200, 30))]
    post_batch(client, [payload(e, rng, time_format="iso_z") for e in events])
    path = path.format(movie=movie)
    params = {"window": 3600} if name == "realtime" else {"tz": "Asia/Kathmandu", "days": 2}
    with clock.frozen(frozen_now):
        body = get(client, path, **params)
        response = client.get(f"{BASE}/{path}", {**params, "format": "csv"})
    assert_csv_is_the_json(response, body, rows)
    dates = "" if name == "realtime" else f'_{body["from"]}_{body["to"]}'
    assert response["Content-Disposition"] == f'attachment; filename="{name}{dates}.csv"'


def test_csv_of_an_empty_list_is_its_header(ch, client):
    response = client.get(f"{BASE}/content/popular", {"format": "csv", "days": 1})
    assert response.content == b"movie_id,total_views,unique_viewers,completion_rate\r\n"


def test_errors_are_json_when_csv_is_asked(ch, client):
    response = client.get(f"{BASE}/trends", {"tz": "Mars/Olympus", "format": "csv"})
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert list(response.json()) == ["tz"]
