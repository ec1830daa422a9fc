"""Window exports in slices: the window cut into slices of at most SLICE_ROWS events (one query
each, so the engine sorts one slice at a time), the slices' outputs making one file in every
format, the settings that keep an export's memory flat, and a slice failing or a client
leaving half-way (never a complete-looking file, nothing left behind)."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from clickhouse_driver import errors as driver_errors

from tests.generator import events_generate
from tests.viewing.test_exports import (
    PARSERS,
    as_row,
    client_with,
    download,
    export_leftovers,
    store_many,
    stored_rows,
)
from viewing import exports
from viewing.exports import local_window, window_slices
from viewing.services import events_store

T0 = datetime(2026, 11, 28, 18, 15)


@pytest.fixture
def exporter(db):
    return client_with("export")


@pytest.fixture
def stored(ch):
    """~600 events of 10 users over 12 days up to now, stored; the generator's truth."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    events = events_generate(seed=21, count=600, now=now, days_back=11)
    events_store(events=[as_row(e) for e in events])
    return events  # Asia/Kathmandu's midnight in UTC: off the quarter hours


def q(minutes):
    return T0 + timedelta(minutes=minutes)


def test_slices_cover_the_window_and_hold_at_most_rows_unless_one_bucket_does():
    end = T0 + timedelta(days=1)
    # (bucket start, events in it); empty quarter hours have no bucket.
    buckets = [(q(0), 3), (q(15), 4), (q(30), 2), (q(60), 9), (q(90), 1), (q(600), 2)]
    slices = window_slices(start=T0, end=end, buckets=buckets, rows=6)
    assert slices[0][0] == T0 and slices[-1][1] == end
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:], strict=False))  # contiguous
    assert slices == [(T0, q(15)), (q(15), q(60)), (q(60), q(90)), (q(90), end)]
    held = [sum(n for m, n in buckets if a <= m < b) for a, b in slices]
    assert held == [3, 6, 9, 3]  # 3 + 4 is over 6, 4 + 2 is not; 9: one bucket alone
    held = [sum(n for m, n in buckets if a <= m < b) for a, b in window_slices(
        start=T0, end=end, buckets=buckets, rows=4)]
    assert held == [3, 4, 2, 9, 3]


def test_no_events_and_a_bucket_before_the_window_start_make_one_slice():
    start, end = T0 + timedelta(minutes=5), T0 + timedelta(hours=1)
    assert window_slices(start=start, end=end, buckets=[], rows=10) == [(start, end)]
    # A cut is never at or before the window's start, even with the first bucket over `rows`.
    assert window_slices(start=start, end=end, buckets=[(T0, 50), (q(15), 50)], rows=10) == [
        (start, q(15)), (q(15), end)]


@pytest.fixture
def small_slices(monkeypatch):
    """Slices of at most 40 events, and the slices each export was cut into."""
    monkeypatch.setattr(exports, "SLICE_ROWS", 40)
    made = []

    def recording(**kwargs):
        made.append(window_slices(**kwargs))
        return made[-1]

    monkeypatch.setattr(exports, "window_slices", recording)
    return made


@pytest.mark.parametrize("output", ["csv", "ndjson", pytest.param("parquet", marks=pytest.mark.embedded)])
@pytest.mark.parametrize("tz", ["UTC", "Asia/Kathmandu"])
def test_an_export_in_many_slices_is_one_file_of_the_windows_events(stored, exporter, small_slices, output, tz):
    today = datetime.now(UTC).date()
    first, last = today - timedelta(days=9), today
    _, body = download(exporter, "events/export", **{"from": first, "to": last, "tz": tz, "format": output})
    start, end = local_window(date_from=first, date_to=last, tz=tz)
    expected = stored_rows("event_time >= %(s)s AND event_time < %(e)s", {"s": start, "e": end})
    assert PARSERS[output](body) == expected and len(expected) > 300
    (slices,) = small_slices
    assert len(slices) >= len(expected) // 40
    if output == "csv":
        assert body.count(b'"id","user_id"') == 1  # the header once, not once a slice


def test_every_slice_holds_at_most_slice_rows_events_unless_one_quarter_hour_does(stored, exporter, small_slices):
    today = datetime.now(UTC).date()
    download(exporter, "events/export", **{"from": today - timedelta(days=11), "to": today})
    (slices,) = small_slices
    counts = [stored_rows("event_time >= %(s)s AND event_time < %(e)s", {"s": a, "e": b}) for a, b in slices]
    for (a, _), rows in zip(slices, counts, strict=True):
        quarter = stored_rows("event_time >= %(s)s AND event_time < %(e)s", {"s": a, "e": a + timedelta(minutes=15)})
        assert len(rows) <= 40 or len(rows) == len(quarter)
    assert sum(len(rows) for rows in counts) == len(stored)


def _settings(sql):
    return dict(re.findall(r"^\s*(\w+) = ([^,\n]+),?$", sql.split("SETTINGS", 1)[1], re.M))


def test_the_settings_that_keep_an_exports_memory_flat():
    # Measured at 10M events (docs/performance.md): each of these is tens of MiB of the
    # server's memory during an export.
    for sql in (exports.SLICE_EVENTS, exports.USER_EVENTS):
        s = _settings(sql)
        assert s["optimize_read_in_order"] == "0"  # ~3.6 MB per part of the table otherwise
        assert s["max_threads"] == "1" and s["output_format_parallel_formatting"] == "0"
    for sql in (exports.SLICES_AS_ONE_FILE, exports.WINDOW_EVENTS):
        s = _settings(sql)
        assert s["output_format_parquet_write_bloom_filter"] == "0"  # kept to the end of the file
        assert s["output_format_parallel_formatting"] == "0"
    assert exports.SLICE_ROWS == 200_000


@pytest.mark.embedded
@pytest.mark.parametrize("output", ["csv", "parquet"])
def test_a_slice_failing_half_way_cuts_the_download_short(stored, exporter, small_slices, monkeypatch, output):
    # The third slice's query fails (throwIf on its start): the file must not look complete.
    today = datetime.now(UTC).date()
    window = {"from": today - timedelta(days=11), "to": today, "format": output}
    start, end = local_window(date_from=today - timedelta(days=11), date_to=today, tz="UTC")
    third = window_slices(start=start, end=end, rows=40, buckets=_buckets(start, end))[2][0]
    monkeypatch.setattr(exports, "SLICE_EVENTS", exports.SLICE_EVENTS.replace(
        "ORDER BY", f"AND NOT throwIf({{start:DateTime('UTC')}} >= toDateTime('{third}', 'UTC'))\nORDER BY"))
    before = export_leftovers()
    response = exporter.get("/api/v1/analytics/events/export", window)
    if response.status_code == 200:  # CSV: the first slices were sent already
        with pytest.raises(driver_errors.ServerException, match="FUNCTION_THROW_IF_VALUE_IS_NON_ZERO"):
            b"".join(response.streaming_content)
    else:  # Parquet: nothing is sent before the end of the file
        assert response.status_code == 503
    assert export_leftovers() == before


def _buckets(start, end):
    rows = stored_rows("event_time >= %(s)s AND event_time < %(e)s", {"s": start, "e": end})
    counts = {}
    for row in rows:
        moment = datetime.strptime(row["event_time"], "%Y-%m-%dT%H:%M:%SZ")
        bucket = moment.replace(minute=moment.minute - moment.minute % 15, second=0)
        counts[bucket] = counts.get(bucket, 0) + 1
    return sorted(counts.items())


@pytest.mark.embedded
def test_a_client_leaving_a_parquet_export_stops_both_of_its_queries(ch, exporter, monkeypatch):
    monkeypatch.setattr(exports, "SLICE_ROWS", 5_000)
    store_many(60_000)
    before = export_leftovers()
    today = date.today()
    response = exporter.get("/api/v1/analytics/events/export", {"from": today - timedelta(days=2), "to": today,
                                                                 "format": "parquet"})
    assert response.status_code == 200
    pieces = iter(response.streaming_content)
    assert next(pieces).startswith(b"PAR1")
    response.close()  # what Django does when the client goes away
    assert export_leftovers() == before
