"""Hostile input over HTTP, beyond the field rules of test_api_validation.py: deep and huge
JSON, NUL and non-UTF-8 bytes, NaN, SQL-looking text, odd UUIDs, extreme numbers and times,
unknown fields, wrong content types, odd query strings. Never a 5xx; bad input stores nothing."""

import json
import uuid

import pytest

from tests.conftest import query

BASE = "/api/v1/analytics"
SQL = "'; DROP TABLE viewing_events; --"


def valid(**changes):
    body = {"user_id": str(uuid.uuid4()), "movie_id": str(uuid.uuid4()), "event_type": "start"}
    body.update(changes)
    return body


def post_raw(client, path, body, content_type="application/json"):
    return client.post(f"{BASE}/{path}", body, content_type=content_type)


def stored():
    return query("SELECT count() FROM viewing_events")[0][0]


def nested(depth, leaf="x"):
    """{"a": {"a": ... leaf}} `depth` objects deep, as JSON text."""
    return '{"a":' * depth + json.dumps(leaf) + "}" * depth


@pytest.mark.parametrize("path", ["events", "events/batch"])
@pytest.mark.parametrize("shape", ["array", "object"])
def test_json_nested_1000_deep_is_a_400(ch, client, path, shape):
    body = "[" * 1000 + "]" * 1000 if shape == "array" else nested(1000)
    response = post_raw(client, path, body)
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert stored() == 0


@pytest.mark.parametrize("depth", [2, 32, 33, 300, 900])
@pytest.mark.parametrize("path", ["events", "events/batch"])
def test_metadata_nested_up_to_32_levels_is_stored_deeper_is_a_400(ch, client, path, depth):
    item = f'{{"user_id": "{uuid.uuid4()}", "movie_id": "{uuid.uuid4()}", "event_type": "start", "metadata": {nested(depth)}}}'
    response = post_raw(client, path, item if path == "events" else f"[{item}]")
    if depth <= 32:
        assert response.status_code == 201, response.content
        assert query("SELECT metadata FROM viewing_events") == [(nested(depth),)]
        if path == "events":
            assert json.dumps(response.json()["metadata"], separators=(",", ":")) == nested(depth)
    elif depth < 400:
        assert response.status_code == 400, response.content
        errors = response.json() if path == "events" else response.json()["errors"][0]
        assert errors == {"metadata": ["Must be nested at most 32 levels deep."]}
        assert stored() == 0
    else:
        # Near Python's recursion limit the JSON parser itself may stop first; which of the two
        # 400s comes depends on how deep the caller's stack already is (a test worker's is
        # deeper than gunicorn's), so either is right as long as it names the nesting.
        assert response.status_code == 400, response.content
        assert "nested" in response.content.decode()
        assert stored() == 0


def test_huge_metadata_is_refused_by_size_not_by_a_crash(ch, client):
    wide = {f"k{i}": i for i in range(100_000)}  # 1.3 MB of keys
    response = post_raw(client, "events", json.dumps(valid(metadata=wide)))
    assert response.status_code == 400 and "metadata" in response.json()
    long_string = valid(metadata={"x": "y" * 5_000_000})
    response = post_raw(client, "events/batch", json.dumps([long_string]))
    assert response.status_code == 400 and "metadata" in response.json()["errors"][0]
    assert stored() == 0


def test_nul_bytes_are_refused_in_ids_and_kept_verbatim_in_metadata(ch, client):
    bad = post_raw(client, "events", json.dumps(valid(user_id="5f1c7c9e-3b2a-4d8e-9a51-0c6f2b7d8e1\u0000")))
    assert bad.status_code == 400 and "user_id" in bad.json()
    raw_nul = post_raw(client, "events", b'{"user_id": "a\x00b"}')  # unescaped: not JSON
    assert raw_nul.status_code == 400 and "JSON parse error" in raw_nul.json()["detail"]
    metadata = {"note": "a\u0000b", "k\u0000": "\u0000"}
    ok = post_raw(client, "events", json.dumps(valid(metadata=metadata)))
    assert ok.status_code == 201 and ok.json()["metadata"] == metadata
    assert query("SELECT metadata FROM viewing_events") == [(json.dumps(metadata, separators=(",", ":")),)]


@pytest.mark.parametrize("body", [
    b'{"user_id": "\xe9t\xe9", "movie_id": "x", "event_type": "start"}',  # Latin-1
    b'{"event_type": "start\xc3"}',  # truncated UTF-8 sequence
    b"\xef\xbb\xbf" + json.dumps(valid()).encode()[:-1] + b"\xff}",
], ids=["latin1", "truncated-utf8", "bom-and-garbage"])
def test_non_utf8_bytes_are_a_400(ch, client, body):
    response = post_raw(client, "events", body)
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert stored() == 0


def test_unpaired_surrogates_in_metadata_are_a_400(ch, client):
    response = post_raw(client, "events", f'{{"user_id": "{uuid.uuid4()}", "movie_id": "{uuid.uuid4()}", "event_type": "start", '
                        '"metadata": {"x": "\\ud800"}}')
    assert response.status_code == 400 and "metadata" in response.json()
    assert stored() == 0


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("field", ["position_seconds", "event_time", "timestamp", "metadata"])
def test_nan_and_infinity_anywhere_are_a_400(ch, client, field, token):
    value = f'{{"x": {token}}}' if field == "metadata" else token
    body = f'{{"user_id": "{uuid.uuid4()}", "movie_id": "{uuid.uuid4()}", "event_type": "start", "{field}": {value}}}'
    for path, text in (("events", body), ("events/batch", f"[{body}]")):
        response = post_raw(client, path, text)
        assert response.status_code == 400, (path, response.content)
        assert "JSON parse error" in response.json()["detail"]
    assert stored() == 0


@pytest.mark.parametrize("field", ["id", "user_id", "movie_id", "session_id", "event_type", "position_seconds",
                                   "event_time", "timestamp"])
def test_sql_in_a_checked_field_is_a_400_and_the_tables_stay(ch, client, field):
    response = post_raw(client, "events/batch", json.dumps([valid(**{field: SQL})]))
    assert response.status_code == 400 and field in response.json()["errors"][0]
    assert stored() == 0
    assert query("EXISTS TABLE viewing_events") == [(1,)]


def test_sql_in_metadata_and_unknown_fields_is_stored_verbatim_never_run(ch, client):
    metadata = {SQL: SQL, "q": "1' OR '1'='1", "c": "); SELECT * FROM system.tables; --", "b": "\\' \\\\"}
    body = valid(metadata=metadata, **{SQL: SQL, "extra": {"nested": [1, 2]}})
    response = post_raw(client, "events", json.dumps(body))
    assert response.status_code == 201
    assert SQL not in response.json() and "extra" not in response.json()  # unknown fields: ignored
    assert query("SELECT metadata FROM viewing_events") == [(json.dumps(metadata, separators=(",", ":")),)]
    assert client.get(f"{BASE}/trends?days=1").json()["trends"][0]["total_events"] == 1


@pytest.mark.parametrize("position", [-1, -(10**30), 10**30, 2**64, "99999999999999999999999", "-5", "1e3", 1e3])
def test_negative_and_overflowing_positions_are_a_400(ch, client, position):
    response = post_raw(client, "events", json.dumps(valid(position_seconds=position)))
    assert response.status_code == 400 and "position_seconds" in response.json()
    assert stored() == 0


ODD_UUIDS = {
    "uppercase": (lambda u: str(u).upper(), True),
    "braces": (lambda u: f"{{{u}}}", True),
    "no dashes": (lambda u: u.hex, True),
    "braces, uppercase, no dashes": (lambda u: f"{{{u.hex.upper()}}}", True),
    "urn": (lambda u: u.urn, False),
    "one brace": (lambda u: f"{{{u}", False),
    "spaces": (lambda u: f" {u} ", False),
    "too short": (lambda u: str(u)[:-1], False),
    "non-hex": (lambda u: str(u)[:-1] + "g", False),
    "an integer": (lambda u: u.int, False),
}


@pytest.mark.parametrize("form", ODD_UUIDS)
def test_odd_uuid_forms(ch, client, form):
    spell, accepted = ODD_UUIDS[form]
    user = uuid.uuid4()
    response = post_raw(client, "events", json.dumps(valid(user_id=spell(user))))
    if accepted:
        assert response.status_code == 201 and response.json()["user_id"] == str(user)
        assert query("SELECT toString(user_id) FROM viewing_events") == [(str(user),)]
        assert client.get(f"{BASE}/user/{spell(user)}/stats?days=1").json()["user_id"] == str(user)
    else:
        assert response.status_code == 400 and "user_id" in response.json()
        assert stored() == 0


@pytest.mark.parametrize("moment", [
    "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "2026-13-45T99:99:99Z",
    "+275760-09-13T00:00:00Z", 10**20, 2**63, -1, 1e300, "10000000000000000000000",
], ids=str)
def test_out_of_range_times_are_a_400(ch, client, moment):
    for field in ("event_time", "timestamp"):
        response = post_raw(client, "events", json.dumps(valid(**{field: moment})))
        assert response.status_code == 400, response.content
        assert field in response.json()
    assert stored() == 0


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data; boundary=x", "",
])
@pytest.mark.parametrize("path", ["events", "events/batch"])
def test_a_body_that_is_not_json_is_a_415(ch, client, path, content_type):
    response = post_raw(client, path, json.dumps(valid()), content_type=content_type)
    assert response.status_code == 415, response.content
    assert "Unsupported media type" in response.json()["detail"]
    assert stored() == 0


@pytest.mark.parametrize("query_string, status", [
    ("days=99999999999999999999999999", 400),
    ("days=1&days=400", 400),  # repeated: the last one counts
    ("days=400&days=1", 200),
    ("days=7.0", 200),  # an integral float is that integer
    ("days=7.5", 400),
    ("days=1e2", 400),
    ("days=NaN", 400),
    ("days=-0", 400),
    ("days=%00", 400),
    (f"days=1;{SQL}", 400),
    ("days=" + "9" * 100_000, 400),
    ("limit=5&limit=500", 400),
    ("unknown=1&days=2", 200),
])
def test_odd_query_strings(ch, client, query_string, status):
    for path in ("content/popular", "trends", "peak-hours", f"user/{uuid.uuid4()}/stats"):
        response = client.get(f"{BASE}/{path}?{query_string}")
        if "limit" in query_string and path != "content/popular":
            continue  # only popular takes limit
        assert response.status_code == status, (path, response.content)
        if status == 400:
            assert list(response.json()) in (["days"], ["limit"])


@pytest.mark.parametrize("user", [SQL, "%00", "x" * 10_000, "{" + "0" * 32 + "}}", "..%2F..%2Fetc%2Fpasswd"])
def test_odd_user_ids_in_the_path_are_a_400(ch, client, user):
    response = client.get(f"{BASE}/user/{user}/stats")
    assert response.status_code in (400, 404), response.content
    assert response["Content-Type"] == "application/json"
