"""The shared event rules (pure: no engine needed)."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from viewing.events import (
    EventInvalid,
    normalize_event,
    parse_event_time,
    parse_uuid,
    serialize_metadata,
)

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
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


# --- The fast path (viewing.events._normalize_common) agrees with the full rules ------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from viewing.events import EVENT_TYPES, _normalize_common, _normalize_full  # noqa: E402

ANY_UUID = st.one_of(
    st.uuids().map(str),                                   # canonical: the fast path
    st.uuids().map(lambda u: str(u).upper()),              # valid, other forms: the full rules
    st.uuids().map(lambda u: "{" + str(u) + "}"),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: f"urn:uuid:{u}"),             # invalid
    st.uuids().map(lambda u: str(u) + "\n"),
    st.uuids(),                                            # a UUID object
    st.text(max_size=40), st.integers(), st.none(), st.booleans(),
)
ISO_TIME = st.datetimes(
    min_value=NOW.replace(tzinfo=None) - timedelta(days=400), max_value=NOW.replace(tzinfo=None) + timedelta(hours=1),
).flatmap(lambda moment: st.sampled_from([
    moment.isoformat(timespec="seconds") + "Z",
    moment.isoformat() + "Z",
    moment.isoformat(timespec="milliseconds") + "+02:00",
    moment.isoformat(timespec="seconds") + "-05:30",
    moment.isoformat(timespec="seconds") + "z",
    moment.isoformat(timespec="seconds"),                  # naive: an error
    " " + moment.isoformat(timespec="seconds") + "Z",
    str(int((moment.replace(tzinfo=UTC)).timestamp())),
]))
ANY_TIME = st.one_of(ISO_TIME, st.integers(min_value=-10, max_value=2 * 10**12), st.floats(allow_nan=True),
                     st.text(max_size=30), st.none(), st.booleans())
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                      st.text(max_size=20))
JSON = st.recursive(JSON_LEAF, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                    max_leaves=20)
ANY_METADATA = st.one_of(st.none(), st.dictionaries(st.text(max_size=10), JSON, max_size=5), JSON,
                         st.just({"big": "x" * 9000}), st.just({"a": float("nan")}), st.just({"s": "\ud800"}))
ANY_TYPE = st.one_of(st.sampled_from(sorted(EVENT_TYPES)), st.sampled_from(["START", " stop", "play", ""]),
                     st.none(), st.integers())
ANY_POSITION = st.one_of(st.integers(min_value=-5, max_value=4294967300), st.sampled_from(["12", "x", 1.0, True]),
                         st.none())


def absent_or(strategy):
    """A field's value, or ... for a field left out."""
    return st.one_of(st.just(...), strategy)


@st.composite
def raw_events(draw):
    fields = {
        "user_id": draw(absent_or(ANY_UUID)), "movie_id": draw(absent_or(ANY_UUID)),
        "session_id": draw(absent_or(ANY_UUID)), "event_id": draw(absent_or(ANY_UUID)),
        "id": draw(absent_or(ANY_UUID)), "event_type": draw(absent_or(ANY_TYPE)), "action": draw(absent_or(ANY_TYPE)),
        "position_seconds": draw(absent_or(ANY_POSITION)), "event_time": draw(absent_or(ANY_TIME)),
        "timestamp": draw(absent_or(ANY_TIME)), "metadata": draw(absent_or(ANY_METADATA)),
    }
    return {k: v for k, v in fields.items() if v is not ...}


@st.composite
def mostly_common_events(draw):
    """An event in the common shape (both ways in's field names), with a few fields drawn from
    raw_events instead: near the boundary between the two paths."""
    moment = draw(st.datetimes(min_value=NOW.replace(tzinfo=None) - timedelta(days=366),
                               max_value=NOW.replace(tzinfo=None) + timedelta(minutes=6)))
    data = {
        "user_id": str(draw(st.uuids())), "movie_id": str(draw(st.uuids())),
        "session_id": draw(st.one_of(st.none(), st.uuids().map(str))),
        "id": str(draw(st.uuids())), "event_id": str(draw(st.uuids())),
        "event_type": draw(st.sampled_from(sorted(EVENT_TYPES))), "action": draw(st.sampled_from(sorted(EVENT_TYPES))),
        "position_seconds": draw(st.integers(min_value=0, max_value=4294967295)),
        "timestamp": moment.isoformat() + draw(st.sampled_from(["Z", "+00:00", "+01:00", "-08:00"])),
        "metadata": draw(st.dictionaries(st.text(max_size=8), JSON, max_size=4)),
    }
    other = draw(raw_events())
    for field in draw(st.lists(st.sampled_from(sorted(data)), max_size=2, unique=True)):
        if field in other:
            data[field] = other[field]
        else:
            del data[field]
    return data


WAYS_IN = st.sampled_from([
    # HTTP: id/event_type, receipt time; Kafka: event_id/action, topic, record time.
    dict(id_field="id", type_field="event_type", default_type=None, default_time=NOW),
    dict(id_field="event_id", type_field="action", default_type="stream.stop",
         default_time=NOW - timedelta(minutes=1)),
    dict(id_field="event_id", type_field="action", default_type="clicks", default_time=NOW - timedelta(days=400)),
])


def full_rules(data, way, default_id):
    try:
        return _normalize_full(data, NOW, 365, way["id_field"], way["type_field"], way["default_type"],
                               way["default_time"], default_id)
    except EventInvalid as e:
        return e.errors


@settings(max_examples=1500, deadline=None)
@given(data=st.one_of(mostly_common_events(), raw_events()), way=WAYS_IN)
def test_the_fast_path_gives_the_full_rules_row_or_steps_aside(data, way):
    default_id = uuid.UUID(int=7)
    fast = _normalize_common(data, NOW, 365, way["id_field"], way["type_field"], way["default_type"],
                             way["default_time"], default_id)
    if fast is not None:
        assert fast == full_rules(data, way, default_id)
    # Whichever path runs, normalize_event answers as the full rules do.
    try:
        answer = normalize_event(data, now=NOW, default_id=default_id, **way)
    except EventInvalid as e:
        answer = e.errors
    assert answer == full_rules(data, way, default_id)


@pytest.mark.parametrize("variant", [
    {}, {"session_id": None}, {"position_seconds": 0}, {"metadata": {"device": "tv", "n": [1, 2.5, None]}},
    {"event_time": "2026-11-28T13:00:00+02:00"}, {"timestamp": "2026-11-28T10:00:00.123456Z"},
    {"event_time": None, "timestamp": None},  # receipt time
])
def test_the_common_shape_takes_the_fast_path(variant):
    data = {"id": str(uuid.uuid4()), "user_id": U, "movie_id": U, "event_type": "stop",
            "session_id": str(uuid.uuid4()), "position_seconds": 42, "event_time": "2026-11-28T10:00:00Z",
            "metadata": {}}
    data.update(variant)
    fast = _normalize_common(data, NOW, 365, "id", "event_type", None, NOW, None)
    assert fast is not None
    assert fast == _normalize_full(data, NOW, 365, "id", "event_type", None, NOW, None)


ANY_FLOAT = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                      st.sampled_from([1e-05, 0.0001, 1.5e-07, 1e16, 9999999999999998.0, 1e22, 5e-324, -0.0]))
METADATA_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63 - 2, max_value=2**64 + 2),
              ANY_FLOAT, st.text(max_size=12), st.sampled_from(["0.00001", "1e5", "null", "\x00\x1f\x7f\u2028é😀"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=25)


@settings(max_examples=3000, deadline=None)
@given(value=st.dictionaries(st.text(max_size=8), METADATA_VALUE, max_size=5))
def test_metadata_text_is_what_the_json_module_writes(value):
    # serialize_metadata writes most objects with orjson: the text must be json.dumps's, always.
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if len(expected.encode()) > 8192:
        return
    assert serialize_metadata(value) == expected


@pytest.mark.parametrize("value", [{"a": float("nan")}, {"a": [float("-inf")]}, {"a": "\ud800"}, {"a": 2**70},
                                   {"a": datetime(2026, 1, 1)}])
def test_metadata_orjson_would_write_differently_is_decided_by_the_json_rules(value):
    try:
        expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        expected.encode()
    except (ValueError, TypeError) as e:  # TypeError: not JSON at all (a caller's bug, not input)
        with pytest.raises(type(e) if isinstance(e, TypeError) else ValueError):
            serialize_metadata(value)
    else:
        assert serialize_metadata(value) == expected


@settings(max_examples=2000, deadline=None)
@given(value=st.uuids(allow_nil=True))
def test_canonical_uuid_is_what_uuid_makes(value):
    import pickle

    from viewing.events import canonical_uuid

    made = canonical_uuid(str(value))
    assert made == value and hash(made) == hash(value) and str(made) == str(value)
    assert made.is_safe == value.is_safe and made.version == value.version
    assert pickle.loads(pickle.dumps(made)) == value and made.bytes == value.bytes
