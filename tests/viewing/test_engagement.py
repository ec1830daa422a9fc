"""Summary, retention and concurrency compared with the plain-Python reference
(tests/reference_engagement.py), in UTC and in zones whose midnight is not a UTC hour or whose
clock changes; the events go in through the HTTP API."""

import random
from datetime import timedelta

import pytest

from tests import reference_engagement as reference
from tests.conftest import query
from tests.engagement_data import edge_cases, last_transition, random_sessions
from tests.generator import payload

BASE = "/api/v1/analytics"
ZONES = ["UTC", "Asia/Kathmandu", "America/New_York"]


def post_events(client, events):
    rng = random.Random(1)
    bodies = [payload(e, rng) for e in events]
    for start in range(0, len(bodies), 5000):
        chunk = bodies[start : start + 5000]
        response = client.post(f"{BASE}/events/batch", chunk, content_type="application/json")
        assert response.status_code == 201, response.content
    assert query("SELECT count() FROM viewing_events") == [(len(events),)]


def get(client, path, **params):
    response = client.get(f"{BASE}/{path}", params)
    assert response.status_code == 200, response.content
    return response.json()


def naive(moment):
    return moment.replace(tzinfo=None)


def local_today(frozen_now, tz):
    return reference.local(naive(frozen_now), tz).date()


@pytest.fixture
def stored(ch, client, frozen_now):
    """The edge cases and random sessions, stored; with the New York clock change they need."""
    now = naive(frozen_now)
    dst_day = last_transition("America/New_York", now.date() - timedelta(days=2))
    events, ids = edge_cases(now, dst_day=dst_day if (now.date() - dst_day).days < 300 else None)
    events += random_sessions(now, seed=3)
    post_events(client, events)
    return events, ids, dst_day


@pytest.mark.parametrize("tz", ZONES)
def test_summary_matches_the_reference(stored, client, frozen_now, tz):
    events, _ids, _dst = stored
    today = local_today(frozen_now, tz)
    for days in (1, 2, 3, 7, 10):
        expected = reference.summary(events, first_day=today - timedelta(days=days - 1), last_day=today, tz=tz)
        assert get(client, "summary", days=days, tz=tz) == expected, days
    expected = reference.summary(events, first_day=today - timedelta(days=3), last_day=today, tz=tz, compare=True,
                                 now=frozen_now)
    assert get(client, "summary", days=4, tz=tz, compare="previous_period") == expected
    first, last = today - timedelta(days=5), today - timedelta(days=2)
    assert get(client, "summary", **{"from": first, "to": last, "tz": tz}) == reference.summary(
        events, first_day=first, last_day=last, tz=tz
    )


def test_summary_defaults_to_seven_utc_dates(stored, client, frozen_now):
    events, _ids, _dst = stored
    today = frozen_now.date()
    assert get(client, "summary") == reference.summary(events, first_day=today - timedelta(days=6), last_day=today)


def test_named_cases_by_hand(ch, client, frozen_now):
    """The cases said plainly, numbers worked out by hand (beside the reference's agreement)."""
    import uuid

    from tests.generator import Event

    day = naive(frozen_now).replace(hour=0, minute=0) - timedelta(days=1)
    user, other, third, movie = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    s1, s2, s3, s4, s5, s6, s7 = (uuid.uuid4() for _ in range(7))

    def event(kind, position, at, session, who=user):
        return Event(id=uuid.uuid4(), user_id=who, movie_id=movie, event_type=kind, position_seconds=position,
                     event_time=day + at, session_id=session)

    post_events(client, [
        event("start", 0, timedelta(hours=1), None),  # no session: an event, not a view
        event("progress", 300, timedelta(hours=2), s1),  # one event: a view of 0 s
        event("start", 0, timedelta(hours=20), s2),  # these two touch at 20:30:00
        event("progress", 1800, timedelta(hours=20, minutes=30), s2),
        event("start", 1200, timedelta(hours=20, minutes=30), s3, who=other),  # resumes at 1200
        event("finish", 3600, timedelta(hours=21), s3, who=other),
        event("start", 0, timedelta(hours=20, minutes=40), s5, who=third),  # ends the second before 21:00
        event("progress", 1140, timedelta(hours=20, minutes=59, seconds=59), s5, who=third),
        # The day before: one view ends the second before the next starts (never live together).
        event("start", 0, timedelta(hours=-21), s6),
        event("progress", 600, timedelta(hours=-21, minutes=10), s6),
        event("start", 600, timedelta(hours=-21, minutes=10, seconds=1), s7),
        event("progress", 1200, timedelta(hours=-21, minutes=20), s7),
        event("progress", 60, timedelta(hours=23, minutes=50), s4),  # across midnight: cut by days=1
        event("progress", 660, timedelta(days=1, minutes=0), s4),
    ])
    yesterday = {"from": day.date(), "to": day.date()}
    body = get(client, "summary", **yesterday)
    assert {k: body[k] for k in ("starts", "finishes", "total_events", "unique_users", "views")} == {
        "starts": 4, "finishes": 1, "total_events": 9, "unique_users": 3, "views": 5}
    assert body["watch_time_seconds"] == 0 + 1800 + 2400 + 0 + 1140
    assert body["peak_concurrent_views"] == 2  # closed intervals: s2 and s3 both live at 20:30:00
    assert body["avg_view_duration_seconds"] == 1068.0
    before = get(client, "summary", **{"from": day.date() - timedelta(days=1), "to": day.date() - timedelta(days=1)})
    assert (before["views"], before["peak_concurrent_views"]) == (2, 1)
    assert get(client, "summary", days=1)["watch_time_seconds"] == 0  # today's part of s4: one event
    assert get(client, "summary", days=2)["watch_time_seconds"] == 5340 + 600
    curve = get(client, f"content/{movie}/retention", bucket=600, **yesterday)["curve"]
    # 0 … 3600: s2 to 1800, s3 from 1200, s5 to 1140; s1 (300 only) and s4 (60 that day) at none
    assert [p["viewers"] for p in curve] == [2, 2, 2, 2, 1, 1, 1]
    hours = get(client, "concurrency", interval="hour", **yesterday)["concurrency"]
    assert (hours[20]["peak_concurrent_views"], hours[20]["peak_at"]) == (2, f"{day.date()}T20:30:00Z")
    # Two live just before 21:00:00 (s3, s5), but s5's last second was 20:59:59.
    assert (hours[21]["peak_concurrent_views"], hours[21]["peak_at"]) == (1, f"{day.date()}T21:00:00Z")
    assert hours[22]["peak_at"] is None


@pytest.mark.parametrize("tz", ZONES)
def test_retention_matches_the_reference(stored, client, frozen_now, tz):
    events, ids, _dst = stored
    today = local_today(frozen_now, tz)
    movies = ids["movies"] + sorted({e.movie_id for e in events})[:3]
    for movie in movies:
        for days, bucket in ((1, 60), (2, 10), (7, 60), (10, 3600), (10, 45)):
            expected = reference.retention(
                events, movie_id=movie, first_day=today - timedelta(days=days - 1), last_day=today, tz=tz, bucket=bucket
            )
            assert get(client, f"content/{movie}/retention", days=days, tz=tz, bucket=bucket) == expected, (movie, days)


def test_retention_of_a_movie_without_views(stored, client, frozen_now):
    import uuid

    movie = uuid.uuid4()
    body = get(client, f"content/{movie}/retention", days=30)
    assert (body["views"], body["curve"], body["avg_view_duration_seconds"]) == (0, [], 0.0)


@pytest.mark.parametrize("tz", ZONES)
def test_concurrency_matches_the_reference(stored, client, frozen_now, tz):
    events, _ids, _dst = stored
    today = local_today(frozen_now, tz)
    for days, interval in ((1, "hour"), (2, "hour"), (10, "day"), (1, "day")):
        expected = reference.concurrency(
            events, first_day=today - timedelta(days=days - 1), last_day=today, tz=tz, interval=interval
        )
        assert get(client, "concurrency", days=days, tz=tz, interval=interval) == expected, (days, interval)


def test_concurrency_over_a_clock_change(stored, client):
    events, _ids, dst_day = stored
    tz = "America/New_York"
    params = {"from": dst_day - timedelta(days=1), "to": dst_day + timedelta(days=1), "tz": tz}
    hourly = get(client, "concurrency", interval="hour", **params)
    assert hourly == reference.concurrency(
        events, first_day=params["from"], last_day=params["to"], tz=tz, interval="hour"
    )
    # 23 or 25 local hours on the day the clock changes.
    assert len(hourly["concurrency"]) in (71, 73)
    assert get(client, "concurrency", interval="day", **params) == reference.concurrency(
        events, first_day=params["from"], last_day=params["to"], tz=tz, interval="day"
    )


def test_concurrency_defaults(stored, client, frozen_now):
    events, _ids, _dst = stored
    today = frozen_now.date()
    body = get(client, "concurrency")
    assert body == reference.concurrency(events, first_day=today - timedelta(days=6), last_day=today)
    assert [e["date"] for e in body["concurrency"]][-1] == today.isoformat()


def csv_rows(client, path, params, how):
    import csv
    import io

    if how == "accept":
        response = client.get(f"{BASE}/{path}", params, HTTP_ACCEPT="text/csv")
    else:
        response = client.get(f"{BASE}/{path}", {**params, "format": "csv"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return response, list(csv.reader(io.StringIO(response.content.decode("utf-8"), newline="")))


@pytest.mark.parametrize("how", ["accept", "format"])
def test_csv_answers(stored, client, frozen_now, how):
    _events, ids, _dst = stored
    movie = ids["movies"][0]
    params = {"days": 3, "tz": "Asia/Kathmandu"}
    cases = [
        ("summary", {**params, "compare": "previous_period"}, "summary", None),
        (f"content/{movie}/retention", {**params, "bucket": 600}, "retention", "curve"),
        ("concurrency", {**params, "interval": "hour"}, "concurrency", "concurrency"),
        ("concurrency", params, "concurrency", "concurrency"),
    ]
    for path, query_params, name, rows_field in cases:
        body = get(client, path, **query_params)
        response, rows = csv_rows(client, path, query_params, how)
        assert response["Content-Disposition"] == f'attachment; filename="{name}_{body["from"]}_{body["to"]}.csv"'
        entries = body[rows_field] if rows_field else [flattened(body)]
        assert rows[0] == list(entries[0])
        assert rows[1:] == [["" if v is None else str(v) for v in entry.values()] for entry in entries]
        assert len(rows) > 2 or rows_field is None


def flattened(body):
    """The summary as its one CSV row: `previous` and `change` as previous_<field>, change_<field>."""
    row = {}
    for key, value in body.items():
        for field, inner in value.items() if isinstance(value, dict) else [(None, value)]:
            row[f"{key}_{field}" if field else key] = inner
    return row


def test_the_compared_summary_csv_has_both_periods_and_the_change_in_its_row(stored, client, frozen_now):
    params = {"days": 3, "tz": "Asia/Kathmandu", "compare": "previous_period", "format": "csv"}
    body = get(client, "summary", **{k: v for k, v in params.items() if k != "format"})
    _response, rows = csv_rows(client, "summary", params, "format")
    header, row = rows
    cells = dict(zip(header, row, strict=True))
    assert cells["previous_from"] == body["previous"]["from"] and cells["previous_to"] == body["previous"]["to"]
    for metric, change in body["change"].items():
        assert cells[f"change_{metric}"] == ("" if change is None else str(change))
        assert cells[f"previous_{metric}"] == str(body["previous"][metric])
        assert cells[metric] == str(body[metric])
    assert body["previous"]["views"] > 0 and any(v is not None for v in body["change"].values())


def test_realtime_csv(ch, client):
    body = get(client, "realtime")
    response, rows = csv_rows(client, "realtime", {}, "format")
    assert response["Content-Disposition"] == 'attachment; filename="realtime.csv"'
    assert rows == [["movie_id", "live_views"]] and body["top_movies"] == []
