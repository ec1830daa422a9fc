"""Windows in time zones: local midnights, DST days, buckets, the previous period, the shift
table the queries use, and percent change. Pure: no engine."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests import reference
from viewing.windows import UnknownZone, Window, percent_change, zone

ZONES = ["UTC", "Europe/Moscow", "Asia/Kathmandu", "Asia/Kolkata", "America/New_York", "Europe/Berlin",
         "Australia/Lord_Howe", "Pacific/Chatham", "America/St_Johns"]


def test_the_window_is_days_local_dates_ending_today():
    now = datetime(2026, 3, 1, 0, 0, 5, tzinfo=UTC)
    assert Window.of_days(1, now=now) == Window(date(2026, 3, 1), date(2026, 3, 1), "UTC")
    assert Window.of_days(2, now=now) == Window(date(2026, 2, 28), date(2026, 3, 1), "UTC")
    assert Window.of_days(365, now=now).first == date(2025, 3, 2)
    # 00:00:05 UTC is still the previous day in New York and already 05:45 in Kathmandu.
    assert Window.of_days(1, tz="America/New_York", now=now).last == date(2026, 2, 28)
    assert Window.of_days(1, tz="Asia/Kathmandu", now=now).last == date(2026, 3, 1)


@pytest.mark.parametrize(
    "tz, day, hours",
    [("America/New_York", date(2026, 3, 8), 23), ("America/New_York", date(2026, 11, 1), 25),
     ("Europe/Berlin", date(2026, 3, 29), 23), ("Europe/Berlin", date(2026, 10, 25), 25),
     ("Asia/Kathmandu", date(2026, 10, 25), 24), ("UTC", date(2026, 10, 25), 24)],
)
def test_a_local_date_lasts_23_24_or_25_hours(tz, day, hours):
    window = Window(day, day, tz)
    assert window.end - window.start == timedelta(hours=hours)
    assert len(window.buckets("hour")) == hours


def test_kathmandu_days_start_at_18_15_utc():
    window = Window(date(2026, 11, 1), date(2026, 11, 2), "Asia/Kathmandu")
    assert (window.start, window.end) == (datetime(2026, 10, 31, 18, 15), datetime(2026, 11, 2, 18, 15))
    assert window.whole_utc_days() == (date(2026, 11, 1), date(2026, 11, 2))
    hours = window.buckets("hour")
    assert hours[0][1] == {"start": "2026-11-01T00:00:00+05:45"}
    assert hours[0][0] == int(datetime(2026, 10, 31, 18, 15, tzinfo=UTC).timestamp())


def test_whole_utc_days_of_a_short_window_may_be_none():
    window = Window(date(2026, 11, 1), date(2026, 11, 1), "Asia/Kathmandu")
    first, end = window.whole_utc_days()
    assert first == end  # 18:15 … 18:15 next day holds no whole UTC date
    assert Window(date(2026, 11, 1), date(2026, 11, 3), "UTC").whole_utc_days() == (date(2026, 11, 1), date(2026, 11, 4))


def test_fall_back_hour_appears_twice_with_its_two_offsets():
    starts = [label["start"] for _, label in Window(date(2026, 11, 1), date(2026, 11, 1), "America/New_York").buckets("hour")]
    assert starts[1:3] == ["2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00"]
    assert len(set(starts)) == 25


def test_weeks_and_months_start_at_the_later_of_their_first_date_and_from():
    window = Window(date(2026, 10, 28), date(2026, 11, 10), "UTC")
    assert [label["start"] for _, label in window.buckets("week")] == [
        date(2026, 10, 28), date(2026, 11, 2), date(2026, 11, 9)]
    assert [label["start"] for _, label in window.buckets("month")] == [date(2026, 10, 28), date(2026, 11, 1)]


def test_the_previous_period_has_as_many_dates_and_ends_the_day_before():
    window = Window(date(2026, 11, 1), date(2026, 11, 30), "Europe/Berlin")
    assert window.previous() == Window(date(2026, 10, 2), date(2026, 10, 31), "Europe/Berlin")


@pytest.mark.parametrize("tz", ZONES)
def test_the_shift_table_gives_the_local_time_of_every_quarter_hour(tz):
    # Across both clock changes of the year (northern and southern zones).
    for first in (date(2026, 3, 1), date(2026, 9, 20)):
        window = Window(first, first + timedelta(days=45), tz)
        shift = window.shift()
        transitions, offsets = shift["transitions"], shift["offsets"]
        assert len(offsets) == len(transitions) + 1 and transitions[-1] > window.end.replace(tzinfo=UTC).timestamp()
        moment = window.start.replace(tzinfo=UTC)
        while moment < window.end.replace(tzinfo=UTC):
            t = int(moment.timestamp())
            local = t + offsets[sum(1 for b in transitions if b <= t)]
            assert local == t + int(moment.astimezone(ZoneInfo(tz)).utcoffset().total_seconds())
            moment += timedelta(minutes=15)
        assert window.quarter_aligned()


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("interval", ["hour", "day", "week", "month"])
def test_buckets_match_the_reference(tz, interval):
    first = date(2026, 10, 20)
    last = first + timedelta(days=20 if interval == "hour" else 120)
    mine = [{k: str(v) for k, v in label.items()} for _, label in Window(first, last, tz).buckets(interval)]
    theirs = [{k: v for k, v in e.items() if k in ("date", "start")}
              for e in reference.trend_entries([], window=reference.Window(first, last, tz), interval=interval)]
    assert mine == theirs


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd", "/etc/localtime", "Europe/", "x" * 100])
def test_unknown_zones(name):
    with pytest.raises(UnknownZone):
        zone(name)


@pytest.mark.parametrize(
    "now, previous, expected",
    [(110, 100, 10.0), (90, 100, -10.0), (5, 0, None), (0, 0, None), (1, 3, -66.67), (2, 3, -33.33),
     (1.005, 1, 0.5), (100.5, 100, 0.5), (12.5, 8, 56.25), (1, 8, -87.5), (7, 6, 16.67), (1, 160, -99.38)],
)
def test_percent_change_rounds_half_up(now, previous, expected):
    assert percent_change({"x": now}, {"x": previous}, ["x"]) == {"x": expected}
    if isinstance(now, int):
        assert reference.percent_change(now, previous) == expected


def _bucket_of(interval, local_date):
    if interval == "week":
        return local_date - timedelta(days=local_date.weekday())
    return local_date.replace(day=1) if interval == "month" else local_date


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("interval", ["day", "week", "month"])
@pytest.mark.parametrize("first, last", [(date(2026, 3, 1), date(2026, 4, 30)), (date(2026, 10, 20), date(2026, 11, 9)),
                                         (date(2026, 11, 4), date(2026, 11, 4))])
def test_day_pieces_put_every_quarter_hour_in_its_bucket(tz, interval, first, last):
    """Each UTC date of the window, cut at quarter `cut`: every quarter hour before it belongs to
    `before`, the others to `after`, exactly the local bucket of that quarter (None outside the
    window), across clock changes and in every kind of offset."""
    window = Window(first, last, tz)
    pieces = window.day_pieces(interval)
    assert pieces is not None and pieces[0][0] == window.start.date()
    for day, cut, before, after in pieces:
        for q in range(96):
            moment = datetime.combine(day, datetime.min.time()) + timedelta(minutes=15 * q)
            inside = window.start <= moment < window.end
            local = moment.replace(tzinfo=UTC).astimezone(ZoneInfo(tz)).date()
            assert (before if q < cut else after) == (_bucket_of(interval, local) if inside else None), (day, q)
    assert pieces[-1][0] == (window.end - timedelta(seconds=1)).date()


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("first, last", [(date(2026, 11, 2), date(2026, 11, 4)), (date(2026, 3, 27), date(2026, 4, 6)),
                                         (date(2026, 6, 1), date(2026, 6, 1))])
def test_hour_of_day_quarters_give_the_local_hour_of_every_quarter(tz, first, last):
    """Where the offset is one number over the window: the masks hold exactly the window's
    quarters of its first and last UTC dates, and UTC quarter + shift (mod 96) is the local
    quarter of day. Across a clock change: None."""
    window = Window(first, last, tz)
    quarters = window.hour_of_day_quarters()
    if len(window.shift()["transitions"]) > 1:
        assert quarters is None
        return
    assert quarters is not None
    moment = datetime.combine(quarters["first_day"], datetime.min.time())
    while moment.date() <= quarters["last_day"]:
        q = (moment.hour * 60 + moment.minute) // 15
        mask = {quarters["first_day"]: int(quarters["first_mask"]), quarters["last_day"]: int(quarters["last_mask"])}
        in_mask = bool(mask.get(moment.date(), (1 << 96) - 1) >> q & 1)
        assert in_mask == (window.start <= moment < window.end), moment
        local = moment.replace(tzinfo=UTC).astimezone(ZoneInfo(tz))
        assert (q + quarters["quarter_shift"]) % 96 == (local.hour * 60 + local.minute) // 15
        moment += timedelta(minutes=15)


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("first, last", [(date(2026, 10, 20), date(2026, 11, 2)), (date(2026, 3, 29), date(2026, 3, 29)),
                                         (date(2026, 11, 1), date(2026, 11, 1))])
def test_a_window_holding_now_is_compared_with_the_same_elapsed_span(tz, first, last):
    """compare=previous_period while the window is in progress: the previous period ends as long
    after its first midnight as `now` is after the window's, in whole quarter hours; with `now`
    outside the window it is all of its dates. As the reference (tests/reference.py)."""
    window = Window(first, last, tz)
    ref = reference.Window(first, last, tz)
    start = window.start.replace(tzinfo=UTC)
    for offset in (timedelta(0), timedelta(minutes=14, seconds=59), timedelta(hours=13, minutes=7),
                   window.end - window.start - timedelta(seconds=1), window.end - window.start, timedelta(days=-1)):
        now = start + offset
        previous, theirs = window.previous(now=now), ref.previous(now)
        assert (previous.first, previous.last) == (theirs.first, theirs.last) == (window.previous().first, window.previous().last)
        expected_end = theirs.until or datetime.combine(theirs.last + timedelta(days=1), datetime.min.time(),
                                                         tzinfo=ZoneInfo(tz)).astimezone(UTC)
        assert previous.end == expected_end.replace(tzinfo=None), (offset, previous)
        if timedelta(0) <= offset < window.end - window.start:
            assert previous.end - previous.start == min(offset // timedelta(minutes=15) * timedelta(minutes=15),
                                                        window.previous().end - window.previous().start)
        else:
            assert previous == window.previous()
    # The hour buckets of a cut period still cover its dates (the hours after the cut are zeros).
    cut = window.previous(now=start + timedelta(hours=5))
    assert cut.buckets("hour") == window.previous().buckets("hour")


@pytest.mark.parametrize("tz", ZONES + ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
@pytest.mark.parametrize("first, last", [(date(2026, 11, 2), date(2026, 11, 4)), (date(2026, 3, 27), date(2026, 4, 6))])
def test_constant_cut_gives_the_local_date_of_every_quarter_hour(tz, first, last):
    """Where the offset is one number over the window: the quarter hours of UTC date d before k
    have the local date d + shift, the others the next one (+14:00 and -11:00 included)."""
    window = Window(first, last, tz)
    constant = window.constant_cut()
    if len(window.shift()["transitions"]) > 1:
        assert constant is None
        return
    k, shift = constant
    moment = window.start.replace(hour=0, minute=0)
    while moment < window.end:
        q = (moment.hour * 60 + moment.minute) // 15
        local = moment.replace(tzinfo=UTC).astimezone(ZoneInfo(tz)).date()
        assert local == moment.date() + timedelta(days=shift + (q >= k)), moment
        moment += timedelta(minutes=15)
    assert window.previous(now=window.start.replace(tzinfo=UTC) + timedelta(hours=1)).constant_cut() is None
