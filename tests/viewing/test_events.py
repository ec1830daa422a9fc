"""The shared event rules (pure: no engine needed)."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from viewing.events import EventInvalid, normalize_event, parse_event_time, parse_uuid

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc)
U = "e3e70682-c209-4cac-629f-6fbed82c07cd"


def event(**fields):
    base = {"user_id": U, "movie_id": U, "event_type": "start"}
    base.update(fields)
    return base


def errors_of(data, **kw):
    with pytest.raises(EventInvalid) as e:
        normalize_event(data, now=NOW, **kw)
    return e.value.errors


@pytest.mark.parametrize("spelling,stored", [
    ("start", "start"), ("stream.start", "start"), ("stream_start", "start"),
    ("progress", "progress"), ("stream.progress", "progress"), ("stream_progress", "progress"),
    ("progress_update", "progress"), ("finish", "finish"), ("stop", "finish"),
    ("stream.stop", "finish"), ("stream_stop", "finish"),
])
def test_every_event_type_spelling(spelling, stored):
    assert normalize_event(event(event_type=spelling), now=NOW)["event_type"] == stored


@pytest.mark.parametrize("value,expected", [
    ("2026-11-28T10:00:00Z", datetime(2026, 11, 28, 10)),
    ("2026-11-28T12:00:00+02:00", datetime(2026, 11, 28, 10)),
    ("2026-11-28T05:00:00.999-05:00", datetime(2026, 11, 28, 10)),
    (1795860000, datetime(2026, 11, 28, 10)),
    (1795860000.7, datetime(2026, 11, 28, 10)),
    (1795860000123, datetime(2026, 11, 28, 10)),
    ("1795860000", datetime(2026, 11, 28, 10)),
])
def test_time_formats(value, expected):
    assert normalize_event(event(event_time=value), now=NOW)["event_time"] == expected
    assert normalize_event(event(timestamp=value), now=NOW)["event_time"] == expected


@pytest.mark.parametrize("value,message", [
    ("2026-11-28T10:00:00", "time zone"),
    ("yesterday", "ISO-8601"),
    (True, "ISO-8601"),
    (float("nan"), "finite"),
    (-5, "finite"),
    ((NOW + timedelta(minutes=6)).isoformat(), "future"),
    ((NOW - timedelta(days=366)).isoformat(), "retention"),
    (10**30, "range"),
])
def test_bad_times_name_the_field(value, message):
    errs = errors_of(event(event_time=value))
    assert list(errs) == ["event_time"] and message in errs["event_time"][0]


def test_time_window_edges_are_inclusive():
    assert normalize_event(event(event_time=(NOW + timedelta(minutes=5)).isoformat()), now=NOW)
    assert normalize_event(event(event_time=(NOW - timedelta(days=365)).isoformat()), now=NOW)


def test_defaults():
    row = normalize_event(event(), now=NOW)
    assert row["position_seconds"] == 0 and row["metadata"] == "{}" and row["session_id"] is None
    assert row["event_time"] == NOW.replace(tzinfo=None)
    assert isinstance(row["id"], uuid.UUID)
    given = uuid.uuid4()
    assert normalize_event(event(), now=NOW, default_id=given)["id"] == given


@pytest.mark.parametrize("form", [U.upper(), "{" + U + "}", U.replace("-", "")])
def test_uuid_forms_accepted_and_canonicalized(form):
    assert str(parse_uuid(form)) == U


@pytest.mark.parametrize("form", ["urn:uuid:" + U, "{" + U, U + "0", "not-a-uuid", "", 123])
def test_uuid_forms_rejected(form):
    with pytest.raises(ValueError):
        parse_uuid(form)


@pytest.mark.parametrize("field,value", [
    ("user_id", "nope"), ("movie_id", 5), ("session_id", "x"), ("id", "x"),
    ("position_seconds", -1), ("position_seconds", 4294967296), ("position_seconds", 1.5),
    ("position_seconds", True), ("position_seconds", "12a"),
    ("metadata", [1]), ("metadata", "text"), ("metadata", {"a": "x" * 9000}),
    ("metadata", {"a": float("inf")}), ("metadata", {"a": "\ud800"}),
    ("event_type", "pause"), ("event_type", 7),
])
def test_each_rule_names_its_field(field, value):
    assert field in errors_of(event(**{field: value}))


def test_required_fields_and_all_errors_at_once():
    errs = errors_of({"position_seconds": -1})
    assert set(errs) == {"user_id", "movie_id", "event_type", "position_seconds"}


def test_kafka_field_names_and_topic_fallback():
    data = {"user_id": U, "movie_id": U, "timestamp": 1795860000, "event_id": U}
    row = normalize_event(data, now=NOW, id_field="event_id", type_field="action", default_type="stream.stop")
    assert row["event_type"] == "finish" and str(row["id"]) == U
    data["action"] = "stream_start"
    assert normalize_event(data, now=NOW, id_field="event_id", type_field="action", default_type="stream.stop")["event_type"] == "start"


def test_position_bounds_and_metadata_size_edge():
    assert normalize_event(event(position_seconds=4294967295), now=NOW)["position_seconds"] == 4294967295
    big = {"k": "x" * (8192 - len('{"k":""}'))}
    assert len(normalize_event(event(metadata=big), now=NOW)["metadata"]) == 8192
    assert "metadata" in errors_of(event(metadata={"k": big["k"] + "x"}))


def test_deeply_nested_metadata_is_an_error_not_a_crash():
    deep = {}
    cur = deep
    for _ in range(5000):
        cur["a"] = {}
        cur = cur["a"]
    assert "metadata" in errors_of(event(metadata=deep))


def test_nul_in_metadata_is_kept_escaped_in_the_json_text():
    assert normalize_event(event(metadata={"a": "\x00"}), now=NOW)["metadata"] == '{"a":"\\u0000"}'


def test_not_an_object():
    assert "non_field_errors" in errors_of([1, 2])


def test_parse_event_time_accepts_naive_now():
    assert parse_event_time(0 + 1795860000, now=NOW.replace(tzinfo=None), retention_days=365)
