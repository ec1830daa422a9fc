"""Every input rule of docs/api.md, Events, over HTTP: 400 naming the field, JSON errors, nothing stored."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client, override_settings
from django.urls import include, path
from rest_framework.views import APIView

from tests.conftest import query

BASE = "/api/v1/analytics"


def valid(**changes):
    body = {
        "user_id": str(uuid.uuid4()),
        "movie_id": str(uuid.uuid4()),
        "event_type": "start",
        "position_seconds": 10,
        "session_id": str(uuid.uuid4()),
        "metadata": {"device": "tv"},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


def nothing_stored():
    return query("SELECT count() FROM viewing_events") == [(0,)]


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def bad_events(now):
    """(description, body, field named in the error)."""
    return [
        ("user_id missing", valid(user_id=...), "user_id"),
        ("user_id null", valid(user_id=None), "user_id"),
        ("user_id not a uuid", valid(user_id="user-1"), "user_id"),
        ("user_id a number", valid(user_id=42), "user_id"),
        ("movie_id missing", valid(movie_id=...), "movie_id"),
        ("movie_id not a uuid", valid(movie_id="1234"), "movie_id"),
        ("session_id not a uuid", valid(session_id="abc"), "session_id"),
        ("event_type missing", valid(event_type=...), "event_type"),
        ("event_type unknown", valid(event_type="pause"), "event_type"),
        ("event_type not a string", valid(event_type=1), "event_type"),
        ("position negative", valid(position_seconds=-1), "position_seconds"),
        ("position too big", valid(position_seconds=4294967296), "position_seconds"),
        ("position a float", valid(position_seconds=1.5), "position_seconds"),
        ("position a bool", valid(position_seconds=True), "position_seconds"),
        ("position text", valid(position_seconds="ten"), "position_seconds"),
        ("event_time naive", valid(event_time="2026-11-28T10:00:00"), "event_time"),
        ("event_time garbage", valid(event_time="yesterday"), "event_time"),
        ("event_time 6 min ahead", valid(event_time=iso(now + timedelta(minutes=6))), "event_time"),
        ("event_time past retention", valid(event_time=iso(now - timedelta(days=366))), "event_time"),
        ("event_time negative epoch", valid(event_time=-5), "event_time"),
        ("event_time a bool", valid(event_time=True), "event_time"),
        ("timestamp ahead (epoch ms)", valid(timestamp=int(now.timestamp() + 3600) * 1000), "timestamp"),
        ("timestamp garbage", valid(timestamp="soon"), "timestamp"),
        ("metadata a list", valid(metadata=[1, 2]), "metadata"),
        ("metadata a string", valid(metadata='{"a": 1}'), "metadata"),
        ("metadata over 8 KiB", valid(metadata={"x": "y" * 8200}), "metadata"),
        ("id not a uuid", valid(id="event-1"), "id"),
        ("not an object", ["start"], "non_field_errors"),
        ("null", None, "non_field_errors"),
    ]


CASES = [name for name, _, _ in bad_events(datetime.now(UTC))]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_single_event_is_400_naming_the_field(ch, client, frozen_now, case):
    _, body, field = next(c for c in bad_events(frozen_now) if c[0] == case)
    response = client.post(f"{BASE}/events", json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    errors = response.json()
    assert field in errors and all(isinstance(m, str) and m for m in errors[field])
    assert nothing_stored()


@pytest.mark.parametrize("case", CASES)
def test_a_bad_item_fails_the_whole_batch(ch, client, frozen_now, case):
    _, body, field = next(c for c in bad_events(frozen_now) if c[0] == case)
    response = client.post(f"{BASE}/events/batch", [valid(), body, valid()], content_type="application/json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors[0] == {} and errors[2] == {}
    assert field in errors[1]
    assert nothing_stored()


def test_every_bad_item_of_a_batch_is_reported(ch, client, frozen_now):
    items = [valid(user_id="x"), valid(), valid(movie_id=..., position_seconds=-3)]
    response = client.post(f"{BASE}/events/batch", items, content_type="application/json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [sorted(e) for e in errors] == [["user_id"], [], ["movie_id", "position_seconds"]]
    assert nothing_stored()


def test_the_limits_themselves_are_accepted(ch, client, frozen_now):
    edge = [
        valid(position_seconds=0),
        valid(position_seconds=4294967295),
        valid(event_time=iso(frozen_now + timedelta(minutes=5))),
        valid(event_time=iso(frozen_now - timedelta(days=365))),
        valid(metadata={"x": "y" * (8192 - len('{"x":""}'))}),
        valid(session_id=None, metadata=...),
    ]
    response = client.post(f"{BASE}/events/batch", edge, content_type="application/json")
    assert response.status_code == 201, response.content
    assert query("SELECT count(), max(position_seconds), max(length(metadata)) FROM viewing_events") == [
        (len(edge), 4294967295, 8192)
    ]


@pytest.mark.parametrize(
    "body",
    [[], {"user_id": str(uuid.uuid4())}, "events", None],
    ids=["empty", "object", "string", "null"],
)
def test_a_batch_must_be_a_non_empty_array(ch, client, body):
    response = client.post(f"{BASE}/events/batch", json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert "non_field_errors" in response.json()
    assert nothing_stored()


def test_a_batch_holds_at_most_10000_events(ch, client, frozen_now):
    item = valid()
    response = client.post(f"{BASE}/events/batch", [item] * 10_001, content_type="application/json")
    assert response.status_code == 400
    assert "10000" in response.json()["non_field_errors"][0]
    assert nothing_stored()


@pytest.mark.slow
def test_a_batch_of_10000_is_one_insert(ch, client, frozen_now):
    items = [valid() for _ in range(10_000)]
    response = client.post(f"{BASE}/events/batch", items, content_type="application/json")
    assert response.status_code == 201 and response.json() == {"accepted": 10_000}
    # One INSERT makes one part in the raw table (the day's partition).
    assert query("SELECT count(), uniqExact(_part) FROM viewing_events") == [(10_000, 1)]


@pytest.mark.parametrize("body", ['{"user_id": ', "[" * 100_000, b"\xff\xfe{}", "NaN"],
                         ids=["truncated", "nested-too-deep", "not-utf8", "nan"])
@pytest.mark.parametrize("path", ["events", "events/batch"])
@pytest.mark.parametrize("debug", [False, True])
def test_malformed_json_is_a_json_400(ch, client, path, debug, body):
    with override_settings(DEBUG=debug):
        response = client.post(f"{BASE}/{path}", body, content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]
    assert nothing_stored()


@pytest.mark.parametrize("path", ["events", "events/batch"])
def test_a_body_over_10_mib_is_a_json_413(ch, client, path):
    body = json.dumps([valid(metadata={"pad": "x" * 1000}) for _ in range(10_300)])
    assert len(body) > 10 * 1024 * 1024
    response = client.post(f"{BASE}/{path}", body, content_type="application/json")
    assert response.status_code == 413
    assert "10 MiB" in response.json()["detail"]
    assert nothing_stored()


def test_a_body_that_is_not_json_is_a_json_415(ch, client):
    response = client.post(f"{BASE}/events", "user_id=1", content_type="text/plain")
    assert response.status_code == 415
    assert "detail" in response.json()
    assert nothing_stored()


@pytest.mark.parametrize(
    "path, parameter",
    [
        ("content/popular?days=0", "days"),
        ("content/popular?days=366", "days"),
        ("content/popular?days=seven", "days"),
        ("content/popular?limit=0", "limit"),
        ("content/popular?limit=101", "limit"),
        ("content/popular?limit=1.5", "limit"),
        ("trends?days=-1", "days"),
        ("trends?days=1e3", "days"),
        ("peak-hours?days=400", "days"),
        ("user/not-a-uuid/stats", "user_id"),
        (f"user/{uuid.UUID(int=2)}/stats?days=0", "days"),
        (f"user/{uuid.UUID(int=3)}/stats?days=x", "days"),
        ("trends?format=xml", "format"),
    ],
)
def test_bad_query_parameters_are_400_naming_them(ch, client, path, parameter):
    response = client.get(f"{BASE}/{path}")
    assert response.status_code == 400
    assert list(response.json()) == [parameter]


@pytest.mark.parametrize("debug", [False, True])
def test_unknown_paths_and_methods_answer_json(ch, client, debug):
    with override_settings(DEBUG=debug):
        missing = client.get("/api/v1/analytics/nothing-here")
        wrong_method = client.get(f"{BASE}/events")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
    assert wrong_method.status_code == 405 and "detail" in wrong_method.json()


class BrokenApi(APIView):
    access_scope = "read"

    def get(self, request):
        raise RuntimeError("a bug")


# The service's routes plus one view with a bug, for the test below.
urlpatterns = [path("broken", BrokenApi.as_view()), path("", include("analytics_site.urls"))]


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_error_is_a_json_500_without_traceback(ch, api_key, debug):
    with override_settings(DEBUG=debug, ROOT_URLCONF=__name__):
        response = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Api-Key {api_key}").get("/broken")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}
