"""Bad parameters of the engagement endpoints, each sent: a 400 naming the parameter."""

import uuid
from datetime import timedelta

import pytest

from tests.generator import Event
from tests.viewing.test_engagement import post_events

BASE = "/api/v1/analytics"
MOVIE = "9b2d4e6f-1a3c-4b5d-8e7f-2a4c6e8b0d13"
WINDOWED = ["summary", f"content/{MOVIE}/retention", "concurrency"]


def errors(client, path, params):
    response = client.get(f"{BASE}/{path}", params)
    assert response.status_code == 400, response.content
    return response.json()


@pytest.mark.parametrize("path", WINDOWED)
@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"tz": "utc"}, "tz"),
        ({"days": "0"}, "days"),
        ({"days": "366"}, "days"),
        ({"days": "seven"}, "days"),
        ({"days": "7", "from": "2026-11-01", "to": "2026-11-02"}, "days"),
        ({"from": "2026-11-01"}, "to"),
        ({"to": "2026-11-01"}, "from"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "from"),
        ({"from": "2025-11-01", "to": "2026-11-02"}, "to"),
        ({"from": "2026-02-30", "to": "2026-03-01"}, "from"),
        ({"from": "01/11/2026", "to": "2026-11-02"}, "from"),
    ],
)
def test_window_parameters(ch, client, path, params, named):
    assert named in errors(client, path, params)


@pytest.mark.parametrize("path", WINDOWED)
def test_a_window_of_366_dates_and_future_dates_are_fine(ch, client, path):
    params = {"from": "2026-01-01", "to": "2027-01-01"}
    if path == "concurrency":
        params["interval"] = "day"
    response = client.get(f"{BASE}/{path}", params)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["from"], body["to"], body["period_days"], body["tz"]) == ("2026-01-01", "2027-01-01", 366, "UTC")


def test_compare(ch, client):
    assert "compare" in errors(client, "summary", {"compare": "last_year"})


@pytest.mark.parametrize("movie", ["not-a-uuid", "123", "9b2d4e6f1a3c4b5d8e7f2a4c6e8b0d1"])
def test_retention_movie_id(ch, client, movie):
    assert errors(client, f"content/{movie}/retention", {}) == {"movie_id": ["Must be a valid UUID."]}


@pytest.mark.parametrize("bucket", ["9", "3601", "0", "-60", "1.5", "x"])
def test_retention_bucket(ch, client, bucket):
    assert "bucket" in errors(client, f"content/{MOVIE}/retention", {"bucket": bucket})


def test_a_curve_over_2000_points_is_a_400_naming_bucket(ch, client, frozen_now):
    session = uuid.uuid4()
    now = frozen_now.replace(tzinfo=None)
    post_events(client, [
        Event(id=uuid.uuid4(), user_id=uuid.uuid4(), movie_id=uuid.UUID(MOVIE), event_type="progress",
              position_seconds=position, event_time=now - timedelta(minutes=1), session_id=session)
        for position in (0, 19_990, 20_000)
    ])
    ok = client.get(f"{BASE}/content/{MOVIE}/retention", {"bucket": 10})  # 2,001 points: 0 … 20,000
    assert ok.status_code == 400
    assert list(ok.json()) == ["bucket"]
    body = client.get(f"{BASE}/content/{MOVIE}/retention", {"bucket": 11}).json()
    assert len(body["curve"]) == 20_000 // 11 + 1


@pytest.mark.parametrize(("params", "named"), [
    ({"interval": "week"}, "interval"),
    ({"interval": "hour", "days": "32"}, "interval"),
    ({"interval": "hour", "from": "2026-10-01", "to": "2026-11-01"}, "interval"),
])
def test_concurrency_interval(ch, client, params, named):
    assert named in errors(client, "concurrency", params)


def test_concurrency_31_dates_of_hours_are_fine(ch, client):
    response = client.get(f"{BASE}/concurrency", {"interval": "hour", "days": "31", "tz": "Asia/Kathmandu"})
    assert response.status_code == 200
    assert len(response.json()["concurrency"]) == 31 * 24


@pytest.mark.parametrize("path", [*WINDOWED, "realtime"])
def test_a_key_is_needed(ch, path):
    from django.test import Client

    assert Client().get(f"{BASE}/{path}").status_code == 401
