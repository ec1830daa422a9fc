"""The batch endpoint's fast path (viewing/batch_decode.py) gives exactly the rows of the event
rules, or steps aside and lets the rules decide: compared item by item, for every shape."""

import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import query
from tests.viewing.test_events import NOW, mostly_common_events, raw_events
from viewing.batch_decode import CommonBatch, EventBatchParser, common_rows, decode_common
from viewing.events import EventInvalid, normalize_event
from viewing.serializers import EventBatchSerializer

BATCH = "/api/v1/analytics/events/batch"


def body_of(items):
    """The JSON a client sends, or None for items JSON cannot carry (a UUID object)."""
    try:
        return json.dumps(items).encode()
    except (TypeError, ValueError):
        return None


def by_rules(items):
    """Each item's row by normalize_event (HTTP's fields, receipt time NOW), or its errors."""
    out = []
    for item in items:
        try:
            out.append(normalize_event(item, now=NOW, retention_days=365, default_time=NOW))
        except EventInvalid as e:
            out.append(e.errors)
    return out


def same_rows(fast, ruled, items):
    """Rows equal, but the id of an item without one (a new random id on either path)."""
    assert len(fast) == len(ruled) == len(items)
    for row, expected, item in zip(fast, ruled, items, strict=True):
        assert isinstance(expected, dict) and "user_id" in expected, expected  # the rules accepted it
        if item.get("id") is None:
            assert isinstance(row["id"], uuid.UUID) and isinstance(expected["id"], uuid.UUID)
            row, expected = {**row, "id": None}, {**expected, "id": None}
        assert row == expected


def http_shaped(event):
    """An event of the strategies with HTTP's field names only (Kafka's are ignored by HTTP)."""
    return {k: v for k, v in event.items() if k not in ("event_id", "action")}


@settings(max_examples=1500, deadline=None)
@given(items=st.lists(st.one_of(mostly_common_events().map(http_shaped), raw_events()), min_size=1, max_size=4))
def test_the_fast_path_gives_the_rules_rows_or_steps_aside(items):
    body = body_of(items)
    if body is None:
        return
    parsed = json.loads(body)  # what the rules see: the document as json reads it
    decoded = decode_common(body)
    if decoded is None:
        return  # not the common shape: the rules decide
    fast = common_rows(decoded, now=NOW, retention_days=365)
    if fast is not None:
        same_rows(fast, by_rules(parsed), parsed)


@settings(max_examples=500, deadline=None)
@given(items=st.lists(mostly_common_events().map(http_shaped), min_size=1, max_size=4))
def test_batches_near_the_common_shape_take_the_fast_path_when_the_rules_accept_them_as_they_are(items):
    body = body_of(items)
    if body is None:
        return
    parsed = json.loads(body)
    decoded = decode_common(body)
    fast = None if decoded is None else common_rows(decoded, now=NOW, retention_days=365)
    if fast is not None:
        same_rows(fast, by_rules(parsed), parsed)


ITEM = {"id": "6f1c1d5e-0000-4000-8000-000000000001", "user_id": "e3e70682-c209-4cac-629f-6fbed82c07cd",
        "movie_id": "16a5ba54-b4f5-4e1f-9d3e-2c2d1b0f0a11", "event_type": "start", "position_seconds": 42,
        "event_time": "2026-11-28T10:00:00Z", "session_id": "00000000-0000-4000-8000-00000000000a",
        "metadata": {"device": "tv", "n": [1, 2.5, None], "big": 10**30}}


@pytest.mark.parametrize("variant", [
    {}, {"session_id": None}, {"id": None}, {"position_seconds": None}, {"metadata": None},
    {"event_time": None}, {"event_time": None, "timestamp": "2026-11-28T13:00:00+02:00"},
    {"event_time": 1795860000}, {"event_time": 1795860000123}, {"timestamp": "ignored when event_time is set"},
    {"user_id": "E3E70682-C209-4CAC-629F-6FBED82C07CD"}, {"movie_id": "16a5ba54b4f54e1f9d3e2c2d1b0f0a11"},
    {"event_type": "stream.stop"}, {"unknown_field": [1, {"x": None}]},
])
def test_the_common_shape_and_its_variants_take_the_fast_path(variant):
    items = [{**ITEM, **variant}]
    body = json.dumps(items).encode()
    decoded = decode_common(body)
    assert decoded is not None
    fast = common_rows(decoded, now=NOW, retention_days=365)
    assert fast is not None
    same_rows(fast, by_rules(json.loads(body)), json.loads(body))


@pytest.mark.parametrize("variant", [
    {"user_id": "{e3e70682-c209-4cac-629f-6fbed82c07cd}"},  # valid in another form: the rules
    {"event_type": "START"}, {"event_type": " stop"}, {"position_seconds": "12"}, {"event_time": "1795860000"},
    {"event_time": 1795860000.5}, {"event_time": "2026-11-28 10:00:00Z"}, {"metadata": {"a": 1e400}},
    {"event_time": "2026-11-28T10:00:00"},  # invalid: the rules word it
    {"event_time": "2030-01-01T00:00:00Z"}, {"event_time": 10**30}, {"position_seconds": 2**32},
    {"position_seconds": -1}, {"position_seconds": 1.0}, {"position_seconds": True}, {"event_type": "play"},
    {"metadata": {"x": "y" * 9000}}, {"metadata": [1]}, {"user_id": None}, {"movie_id": 5},
])
def test_anything_else_leaves_the_batch_to_the_rules(variant):
    body = json.dumps([ITEM, {**ITEM, **variant}]).encode()
    decoded = decode_common(body)
    assert decoded is None or common_rows(decoded, now=NOW, retention_days=365) is None


def parse(body, content_type="application/json"):
    return EventBatchParser().parse_body(body, content_type, {"encoding": content_type.partition("charset=")[2]
                                                              or "utf-8"})


def test_the_parser_gives_the_fast_path_its_batch_and_the_rules_the_document():
    body = json.dumps([ITEM]).encode()
    fast = parse(body)
    assert isinstance(fast, CommonBatch) and fast.generic() == [ITEM]
    assert parse(json.dumps([{**ITEM, "position_seconds": "1"}]).encode()) == [{**ITEM, "position_seconds": "1"}]
    assert not isinstance(parse(body, "application/json; charset=latin-1"), CommonBatch)


def test_a_batch_failing_a_check_of_the_fast_path_gets_the_rules_errors():
    body = json.dumps([ITEM, {**ITEM, "event_time": "2030-01-01T00:00:00Z"}, {**ITEM, "position_seconds": -1}])
    serializer = EventBatchSerializer(data=parse(body.encode()), context={"now": NOW})
    assert not serializer.is_valid()
    assert serializer.errors["errors"][0] == {}
    assert "event_time" in serializer.errors["errors"][1] and "position_seconds" in serializer.errors["errors"][2]


def test_over_http_both_paths_store_the_rules_rows(ch, client):
    common = [{**ITEM, "id": str(uuid.uuid4()), "event_time": None} for _ in range(3)]
    other = [{**ITEM, "id": str(uuid.uuid4()), "event_time": None, "event_type": "STOP"}]  # the rules
    for items in (common, common + other):
        response = client.post(BATCH, json.dumps(items), content_type="application/json")
        assert response.status_code == 201 and response.json() == {"accepted": len(items)}
    stored = query("SELECT toString(id), event_type, position_seconds, metadata, toString(session_id) "
                   "FROM viewing_events ORDER BY event_type, id")
    expected = sorted((i["id"], "finish" if i in other else "start", 42, json.dumps(ITEM["metadata"],
                       separators=(",", ":")), ITEM["session_id"]) for i in common + other)
    assert sorted(stored, key=lambda r: (r[1], r[0])) == sorted(expected, key=lambda r: (r[1], r[0]))


def test_over_http_an_invalid_item_fails_the_whole_batch(ch, client):
    items = [{**ITEM, "id": str(uuid.uuid4())}, {**ITEM, "id": str(uuid.uuid4()), "position_seconds": 2**32}]
    response = client.post(BATCH, json.dumps(items), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"][0] == {} and list(response.json()["errors"][1]) == ["position_seconds"]
    assert query("SELECT count() FROM viewing_events") == [(0,)]
