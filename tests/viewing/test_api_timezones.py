"""Every analytics endpoint in time zones, ranges, trends intervals and comparison, compared with
the plain-Python reference (tests/reference.py), and the window's 400s (CSV answers: test_api_csv.py).

The data has events on both sides of local midnights (+05:45 included), across the last
fall-back and spring-forward days of New York and Berlin, on the first and last days of months
and ISO weeks; one window holds no event.
"""

import random
import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests import reference
from tests.generator import Event, payload, seeded_uuid
from tests.viewing.test_api_reference import BASE, post_batch

ZONES = ["UTC", "Europe/Moscow", "Asia/Kathmandu", "America/New_York", "Europe/Berlin"]


def get(client, path, **params):
    response = client.get(f"{BASE}/{path}", params)
    assert response.status_code == 200, response.content
    return response.json()


def clock_changes(tz, first, last):
    """The local dates in [first, last] on which the zone's offset changes: (date, forward?)."""
    zone, out = ZoneInfo(tz), []
    day = first
    while day <= last:
        before = datetime.combine(day, time(), tzinfo=zone).utcoffset()
        after = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone).utcoffset()
        if before != after:
            out.append((day, after > before))
        day += timedelta(days=1)
    return out


def interesting_dates(today):
    """Dates of the last 300 days worth testing: clock changes, month and ISO-week edges."""
    first = today - timedelta(days=300)
    dates = {today, today - timedelta(days=1)}
    for tz in ("America/New_York", "Europe/Berlin"):
        for day, _forward in clock_changes(tz, first, today):
            dates |= {day - timedelta(days=1), day, day + timedelta(days=1)}
    month_start = today.replace(day=1)
    dates |= {month_start, month_start - timedelta(days=1)}
    monday = today - timedelta(days=today.weekday() + 7)
    dates |= {monday, monday - timedelta(days=1), monday + timedelta(days=6)}
    return sorted(d for d in dates if first <= d <= today)


def build_events(now):
    """Events around every local midnight of the interesting dates in every zone, around the
    clock changes themselves, and some spread at random (naive UTC times, none after now)."""
    rng = random.Random(13)
    users = [seeded_uuid(rng) for _ in range(6)]
    movies = [seeded_uuid(rng) for _ in range(4)]
    moments = set()
    for day in interesting_dates(now.date()):
        for tz in ZONES:
            midnight = datetime.combine(day, time(), tzinfo=ZoneInfo(tz)).astimezone(UTC).replace(tzinfo=None)
            for delta in (-3600, -61, -1, 0, 1, 59 * 60, 3600 + 17):
                moments.add(midnight + timedelta(seconds=delta))
        for tz in ("America/New_York", "Europe/Berlin"):
            zone = ZoneInfo(tz)
            for hour in range(0, 5):
                for minute in (0, 30, 59):
                    for fold in (0, 1):
                        local = datetime.combine(day, time(hour, minute), tzinfo=zone).replace(fold=fold)
                        moments.add(local.astimezone(UTC).replace(tzinfo=None))
        start = datetime.combine(day, time())
        moments |= {start + timedelta(seconds=rng.randrange(86400)) for _ in range(12)}
    moments = sorted(m for m in moments if m <= now)
    return [
        Event(
            id=seeded_uuid(rng),
            user_id=rng.choice(users),
            movie_id=rng.choice(movies),
            event_type=rng.choices(["start", "progress", "finish"], weights=[4, 3, 3])[0],
            position_seconds=rng.randrange(0, 9000),
            event_time=m,
        )
        for m in moments
    ]


@pytest.fixture
def stored(ch, client, frozen_now):
    now = frozen_now.replace(tzinfo=None)
    events = build_events(now)
    rng = random.Random(5)
    bodies = [payload(e, rng, time_format="iso_offset") for e in events]
    for i in range(0, len(bodies), 5000):
        post_batch(client, bodies[i:i + 5000])
    return events


def windows_to_check(today, tz):
    """(query parameters, reference window) pairs: ranges across each clock change, a month
    edge, an ISO week, `days` windows, and an empty window."""
    out = []
    for day, _forward in clock_changes(tz, today - timedelta(days=300), today):
        out.append((day - timedelta(days=1), day + timedelta(days=1)))
    month_start = today.replace(day=1)
    out.append((month_start - timedelta(days=3), month_start + timedelta(days=1)))
    monday = today - timedelta(days=today.weekday() + 7)
    out.append((monday, monday + timedelta(days=6)))
    out.append((today - timedelta(days=320), today - timedelta(days=310)))  # no events
    pairs = [({"from": f.isoformat(), "to": t.isoformat(), "tz": tz}, reference.Window(f, t, tz)) for f, t in out]
    local_today = reference.local_today(datetime.now(UTC).replace(hour=23, minute=58, second=0, microsecond=0), tz)
    for days in (1, 2, 30):
        pairs.append(({"days": days, "tz": tz}, reference.Window.of_days(days, today=local_today, tz=tz)))
    return pairs


@pytest.mark.slow
@pytest.mark.parametrize("tz", ZONES)
def test_every_endpoint_matches_the_reference_in_the_zone(stored, client, frozen_now, tz):
    events = stored
    users = sorted({e.user_id for e in events})[:2] + [uuid.uuid4()]
    checked = windows_to_check(frozen_now.date(), tz)
    if tz in ("America/New_York", "Europe/Berlin"):  # a spring-forward and a fall-back day
        assert len(clock_changes(tz, frozen_now.date() - timedelta(days=300), frozen_now.date())) >= 1
    held = [sum(window.holds(e) for e in events) for _, window in checked]
    assert 0 in held and sum(h > 20 for h in held) >= len(held) - 2, held  # one empty window, most full
    for params, window in checked:
        assert get(client, "content/popular", **params, limit=3) == reference.popular(events, window=window, limit=3)
        assert get(client, "peak-hours", **params) == reference.peak_hours(events, window=window)
        for user in users:
            assert get(client, f"user/{user}/stats", **params) == reference.user_stats(
                events, user_id=user, window=window
            )
        for interval in ("day", "hour", "week", "month"):
            if interval == "hour" and window.days > 31:
                continue
            assert get(client, "trends", **params, interval=interval, compare="previous_period") == reference.trends(
                events, window=window, interval=interval, compare="previous_period", now=frozen_now
            ), (params, interval)
        assert get(client, "trends", **params) == reference.trends(events, window=window)


def test_a_viewer_on_both_sides_of_a_kathmandu_midnight_is_one_viewer(ch, client, frozen_now):
    rng = random.Random(3)
    viewer, movie = uuid.uuid4(), uuid.uuid4()
    day = frozen_now.date() - timedelta(days=3)
    midnight = datetime.combine(day, time(), tzinfo=ZoneInfo("Asia/Kathmandu")).astimezone(UTC).replace(tzinfo=None)
    moments = [midnight - timedelta(seconds=1), midnight, midnight + timedelta(hours=6)]  # 6 h later: next UTC date
    events = [Event(id=seeded_uuid(rng), user_id=viewer, movie_id=movie, event_type="start", position_seconds=0,
                    event_time=m) for m in moments]
    post_batch(client, [payload(e, rng, time_format="iso_z") for e in events])
    params = {"from": day.isoformat(), "to": day.isoformat(), "tz": "Asia/Kathmandu"}
    (entry,) = get(client, "trends", **params)["trends"]
    assert (entry["total_events"], entry["unique_users"]) == (2, 1)
    (item,) = get(client, "content/popular", **params)["items"]
    assert (item["total_views"], item["unique_viewers"]) == (2, 1)
    two_days = {**params, "from": (day - timedelta(days=1)).isoformat()}
    (item,) = get(client, "content/popular", **two_days)["items"]
    assert (item["total_views"], item["unique_viewers"]) == (3, 1)
    assert get(client, "peak-hours", **params)["peak_hours"][0]["events_count"] == 1


@pytest.mark.parametrize(
    "params, parameter",
    [
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"tz": " "}, "tz"),
        ({"tz": "utc"}, "tz"),
        ({"tz": "../../etc/passwd"}, "tz"),
        ({"days": 7, "from": "2026-01-01", "to": "2026-01-02"}, "days"),
        ({"days": 7, "from": "2026-01-01"}, "days"),
        ({"from": "2026-01-01"}, "to"),
        ({"to": "2026-01-01"}, "from"),
        ({"from": "2026-01-02", "to": "2026-01-01"}, "from"),
        ({"from": "2025-01-01", "to": "2026-01-02"}, "to"),  # 367 dates
        ({"from": "2026-1-1x", "to": "2026-01-02"}, "from"),
        ({"from": "2026-01-01", "to": "2026-02-30"}, "to"),
        ({"from": "2026-01-01T00:00:00", "to": "2026-01-02"}, "from"),
        ({"interval": "hour", "days": 32}, "interval"),
        ({"interval": "hour", "from": "2026-01-01", "to": "2026-02-01"}, "interval"),
        ({"interval": "minute"}, "interval"),
        ({"compare": "last_year"}, "compare"),
        ({"format": "xml"}, "format"),
    ],
)
def test_bad_window_parameters_are_400_naming_them(ch, client, params, parameter):
    response = client.get(f"{BASE}/trends", params)
    assert response.status_code == 400, response.content
    assert list(response.json()) == [parameter]
    if parameter not in ("interval", "compare"):
        for path in ("content/popular", "peak-hours", f"user/{uuid.uuid4()}/stats"):
            response = client.get(f"{BASE}/{path}", params)
            assert response.status_code == 400 and list(response.json()) == [parameter], (path, params)


def test_366_dates_and_31_hourly_dates_are_allowed(ch, client):
    body = get(client, "trends", **{"from": "2025-01-01", "to": "2026-01-01", "interval": "month"})
    assert body["period_days"] == 366 and len(body["trends"]) == 13
    body = get(client, "trends", **{"from": "2026-01-01", "to": "2026-01-31", "interval": "hour", "tz": "Asia/Kolkata"})
    assert len(body["trends"]) == 31 * 24 and body["trends"][0]["start"] == "2026-01-01T00:00:00+05:30"


def test_dates_after_today_are_allowed_and_empty(ch, client, frozen_now):
    later = frozen_now.date() + timedelta(days=30)
    body = get(client, "trends", **{"from": later.isoformat(), "to": (later + timedelta(days=1)).isoformat()})
    assert [e["total_events"] for e in body["trends"]] == [0, 0]


def test_the_api_reference_examples_answer_as_written(ch, client):
    body = get(client, "trends", tz="Asia/Kathmandu", interval="week", compare="previous_period",
               **{"from": "2026-10-01", "to": "2026-10-31"})
    assert (body["tz"], body["period_days"], body["interval"]) == ("Asia/Kathmandu", 31, "week")
    assert [e["start"] for e in body["trends"]] == ["2026-10-01", "2026-10-05", "2026-10-12", "2026-10-19", "2026-10-26"]
    assert body["previous"][0]["start"] == "2026-08-31"  # the previous 31 dates: 31 August … 30 September
    response = client.get(f"{BASE}/peak-hours", {"tz": "Europe/Moscow", "days": 7}, HTTP_ACCEPT="text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="peak_hours_')
    assert response.content.startswith(b"hour,events_count,unique_users\r\n0,")
    assert len(response.content.splitlines()) == 25


def test_an_empty_parameter_means_its_default(ch, client):
    body = get(client, "trends", days="", tz="", interval="", compare="")
    assert (body["tz"], body["period_days"], body["interval"]) == ("UTC", 7, "day") and "previous" not in body
    assert get(client, f"user/{uuid.uuid4()}/stats", days="")["period_days"] == 30


def test_a_window_when_the_zone_was_off_the_quarter_hour_is_a_400_naming_tz(ch, client):
    # Liberia kept -00:44:30 until 7 January 1972.
    response = client.get(f"{BASE}/trends", {"tz": "Africa/Monrovia", "from": "1971-06-01", "to": "1971-06-02"})
    assert response.status_code == 400 and list(response.json()) == ["tz"]
    assert get(client, "trends", tz="Africa/Monrovia", days=2)["tz"] == "Africa/Monrovia"


@pytest.mark.parametrize("tz", ["Australia/Adelaide", "America/St_Johns", "Asia/Kolkata"])
def test_half_hour_zones_across_their_clock_changes_match_the_reference(ch, client, frozen_now, tz):
    """Zones off whole hours: a window with one offset reads the viewers of trends and peak
    hours from active_span_daily; one across a clock change (Adelaide and St John's move by an
    hour in :30 zones) peak hours from the quarter-hourly states. Both as the reference."""
    rng = random.Random(21)
    now = frozen_now.replace(tzinfo=None)
    users, movies = [seeded_uuid(rng) for _ in range(5)], [seeded_uuid(rng) for _ in range(3)]
    today = frozen_now.date()
    changes = [day for day, _forward in clock_changes(tz, today - timedelta(days=300), today)]
    assert tz == "Asia/Kolkata" or changes
    ranges = [(day - timedelta(days=1), day + timedelta(days=1)) for day in changes]
    ranges.append((today - timedelta(days=9), today))  # one offset all along
    moments = set()
    for first, last in ranges:
        for day in (first + timedelta(days=i) for i in range((last - first).days + 1)):
            midnight = datetime.combine(day, time(), tzinfo=ZoneInfo(tz)).astimezone(UTC).replace(tzinfo=None)
            moments |= {midnight + timedelta(seconds=d) for d in (-3600, -1, 0, 1, 1799, 1800, 5400)}
            moments |= {midnight + timedelta(seconds=rng.randrange(86400)) for _ in range(20)}
    events = [Event(id=seeded_uuid(rng), user_id=rng.choice(users), movie_id=rng.choice(movies),
                    event_type=rng.choice(["start", "progress", "finish"]), position_seconds=rng.randrange(5000),
                    event_time=m) for m in sorted(moments) if m <= now]
    post_batch(client, [payload(e, rng, time_format="iso_z") for e in events])
    for first, last in ranges:
        params = {"from": first.isoformat(), "to": last.isoformat(), "tz": tz}
        window = reference.Window(first, last, tz)
        assert sum(window.holds(e) for e in events) > 50
        assert get(client, "peak-hours", **params) == reference.peak_hours(events, window=window), params
        for interval in ("day", "week", "month", "hour"):
            assert get(client, "trends", **params, interval=interval) == reference.trends(
                events, window=window, interval=interval), (params, interval)


@pytest.mark.parametrize("tz", ["UTC", "Asia/Kathmandu", "America/New_York"])
def test_a_window_in_progress_is_compared_with_the_same_elapsed_span(ch, client, frozen_now, tz):
    """Today so far against the previous date up to the same time: at 23:58 UTC (the frozen
    clock) the previous date of a window ending today counts its events up to 23:45 after its
    midnight (whole quarter hours), trends and summary alike; a window in the past compares
    whole dates."""
    rng = random.Random(17)
    viewer, movie = seeded_uuid(rng), seeded_uuid(rng)
    today = reference.local_today(frozen_now, tz)
    zone = ZoneInfo(tz)
    elapsed = frozen_now - datetime.combine(today, time(), tzinfo=zone)
    quarter = elapsed // timedelta(minutes=15) * timedelta(minutes=15)
    yesterday = datetime.combine(today - timedelta(days=1), time(), tzinfo=zone)
    moments = [yesterday + quarter - timedelta(seconds=1), yesterday + quarter, yesterday + quarter + timedelta(minutes=5),
               yesterday + timedelta(hours=1), frozen_now - timedelta(minutes=1)]
    events = [Event(id=seeded_uuid(rng), user_id=viewer, movie_id=movie, event_type="start", position_seconds=0,
                    event_time=m.astimezone(UTC).replace(tzinfo=None), session_id=seeded_uuid(rng)) for m in moments]
    post_batch(client, [payload(e, rng, time_format="iso_z") for e in events])
    body = get(client, "trends", tz=tz, days=1, compare="previous_period")
    assert body == reference.trends(events, window=reference.Window(today, today, tz), compare="previous_period",
                                    now=frozen_now)
    assert body["previous"][0]["total_events"] == 2  # not the two from the same quarter hour on
    summary = get(client, "summary", tz=tz, days=1, compare="previous_period")
    assert (summary["total_events"], summary["previous"]["total_events"]) == (1, 2)
    assert summary["previous"]["from"] == summary["previous"]["to"] == (today - timedelta(days=1)).isoformat()
    past = {"from": (today - timedelta(days=1)).isoformat(), "to": (today - timedelta(days=1)).isoformat()}
    assert get(client, "summary", tz=tz, compare="previous_period", **past)["total_events"] == 4
