"""The single-event short path (viewing/event_shortcut.py): an accepted event is answered by
it, stored and counted as through Django; everything else is answered by Django exactly as
before, with the body read once."""

import io
import json
import uuid
from datetime import timedelta

import pytest
from django.core.signals import request_finished
from django.db import connections
from django.test import Client, override_settings
from django.utils import timezone

from analytics_site import metrics
from analytics_site.access.models import SCOPES, ApiKey
from analytics_site.exceptions import StoreFailed
from analytics_site.wsgi import application
from tests.analytics_site.test_faults import attach_tables, detach_tables
from tests.conftest import query
from tests.shortcut_client import ShortcutClient, _ShortcutHandler
from viewing.suppression import user_suppress

EVENTS = "/api/v1/analytics/events"


def event(**fields):
    return {"user_id": str(uuid.uuid4()), "movie_id": str(uuid.uuid4()), "event_type": "start", **fields}


def key(*scopes, **fields):
    return ApiKey.objects.create_key(name="short", **{f"can_{s}": s in scopes for s in SCOPES}, **fields)[1]


def headers(secret, **more):
    return {"Authorization": f"Api-Key {secret}", **more}


def stored():
    return query("SELECT count() FROM viewing_events")[0][0]


def short_path(send):
    """(response, whether the short path answered it)."""
    before = _ShortcutHandler.taken
    response = send()
    return response, _ShortcutHandler.taken == before + 1


def test_an_accepted_event_is_answered_by_the_short_path_as_django_answers_it(ch, frozen_now):
    secret = key("ingest")
    moment = (frozen_now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = event(event_time=moment, position_seconds=7, session_id=str(uuid.uuid4()), metadata={"é": [1.5, None]})
    short, taken = short_path(lambda: ShortcutClient().post(
        EVENTS, {**body, "id": str(uuid.UUID(int=1))}, content_type="application/json", headers=headers(secret)))
    django = Client().post(EVENTS, {**body, "id": str(uuid.UUID(int=2))}, content_type="application/json",
                           headers=headers(secret))
    assert taken and short.status_code == django.status_code == 201
    assert short.content == django.content.replace(str(uuid.UUID(int=2)).encode(), str(uuid.UUID(int=1)).encode())
    assert sorted(short.items()) == sorted(django.items())
    assert stored() == 2
    assert query("SELECT position_seconds, metadata FROM viewing_events WHERE id = %(id)s",
                 {"id": uuid.UUID(int=1)}) == [(7, '{"é":[1.5,null]}')]


@override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"), SECURE_SSL_REDIRECT=True,
                   SECURE_HSTS_SECONDS=31536000, SECURE_HSTS_INCLUDE_SUBDOMAINS=True, SECURE_HSTS_PRELOAD=True)
def test_behind_a_tls_proxy_the_same_headers_and_plain_http_is_redirected_by_django(ch):
    secret = key("ingest")
    tls = headers(secret, **{"X-Forwarded-Proto": "https"})
    short, taken = short_path(lambda: ShortcutClient().post(EVENTS, event(), content_type="application/json",
                                                            headers=tls))
    django = Client().post(EVENTS, event(), content_type="application/json", headers=tls)
    assert taken and short.status_code == django.status_code == 201
    assert sorted(short.items(), key=str) == sorted(
        [(k, v if k != "Content-Length" else short["Content-Length"]) for k, v in django.items()], key=str)
    assert "preload" in short["Strict-Transport-Security"]
    plain, taken = short_path(lambda: ShortcutClient().post(EVENTS, event(), content_type="application/json",
                                                            headers=headers(secret)))
    assert not taken and plain.status_code == 301
    assert stored() == 2


def declined_cases():
    valid = json.dumps(event())
    return {
        "no key": (None, valid, "application/json", {}, 401),
        "unknown key": ("abcdEFGH.abcdefghijklmnopqrstuvwxyzABCDEF", valid, "application/json", {}, 401),
        "read-only key": ("read", valid, "application/json", {}, 403),
        "expired key": ("expired", valid, "application/json", {}, 401),
        "bad field": ("ingest", json.dumps(event(user_id="nope")), "application/json", {}, 400),
        "malformed JSON": ("ingest", '{"user_id": ', "application/json", {}, 400),
        "an array": ("ingest", f"[{valid}]", "application/json", {}, 400),
        "NaN": ("ingest", valid[:-1] + ', "position_seconds": NaN}', "application/json", {}, 400),
        "text/plain": ("ingest", valid, "text/plain", {}, 415),
        "Accept CSV": ("ingest", valid, "application/json", {"Accept": "text/csv"}, 406),
        "Host not allowed": ("ingest", valid, "application/json", {"Host": "evil.example"}, 400),
    }


@pytest.mark.parametrize("case", list(declined_cases()))
def test_everything_else_is_answered_by_django_as_before(ch, case):
    who, body, content_type, extra, status = declined_cases()[case]
    secret = {"read": lambda: key("read"), "ingest": lambda: key("ingest"),
              "expired": lambda: key("ingest", expiry_date=timezone.now() - timedelta(seconds=1))}.get(who, lambda: who)()
    sent = {**(headers(secret) if secret else {}), **extra}
    short, taken = short_path(lambda: ShortcutClient().post(EVENTS, body, content_type=content_type, headers=sent))
    django = Client().post(EVENTS, body, content_type=content_type, headers=sent)
    assert not taken
    assert short.status_code == django.status_code == status
    assert short.content == django.content
    assert stored() == 0


def test_a_query_string_goes_to_django(ch):
    secret = key("ingest")
    response, taken = short_path(lambda: ShortcutClient().post(f"{EVENTS}?x=1", event(), content_type="application/json",
                                                               headers=headers(secret)))
    assert not taken and response.status_code == 201 and stored() == 1


def test_the_throttle_counts_each_request_once(ch):
    secret = key("ingest")
    rates = {"ingest": "2/min", "read": None, "export": None, "erase": None}
    with override_settings(API_THROTTLE_RATES=rates):
        client = ShortcutClient(headers=headers(secret))
        refused = client.post(EVENTS, event(user_id="x"), content_type="application/json")
        accepted, taken = short_path(lambda: client.post(EVENTS, event(), content_type="application/json"))
        throttled = client.post(EVENTS, event(), content_type="application/json")
    assert refused.status_code == 400 and accepted.status_code == 201 and taken
    assert throttled.status_code == 429 and "Retry-After" in throttled
    assert stored() == 1


def test_an_id_stored_before_and_an_erased_viewer_are_acknowledged_and_not_stored_again(ch):
    secret = key("ingest")
    client = ShortcutClient(headers=headers(secret))
    body = event(id=str(uuid.uuid4()))
    assert [client.post(EVENTS, body, content_type="application/json").status_code for _ in range(2)] == [201, 201]
    erased = uuid.uuid4()
    with connections["clickhouse"].cursor() as cursor:
        user_suppress(cursor, user_id=erased)
    response, taken = short_path(lambda: client.post(EVENTS, event(user_id=str(erased)), content_type="application/json"))
    assert taken and response.status_code == 201
    assert query("SELECT count(), uniqExact(id) FROM viewing_events") == [(1, 1)]


@pytest.mark.embedded
def test_a_failed_insert_is_a_503_from_the_short_path_and_nothing_is_stored(ch, caplog):
    secret = key("ingest")
    detached = detach_tables()
    try:
        response, taken = short_path(lambda: ShortcutClient().post(EVENTS, event(), content_type="application/json",
                                                                   headers=headers(secret)))
    finally:
        attach_tables(detached)
    assert taken and response.status_code == 503
    assert response.json() == {"detail": StoreFailed.default_detail, "cause": "UNKNOWN_TABLE"}
    assert "ClickHouse write failed (UNKNOWN_TABLE)" in caplog.text
    assert stored() == 0


def test_the_short_path_logs_and_measures_its_requests(ch, caplog):
    secret = key("ingest")
    sample = ("analytics_http_request_duration_seconds_count",
              {"route": "api/v1/analytics/events", "method": "POST", "status": "201"})
    before = metrics.REGISTRY.get_sample_value(*sample) or 0
    caplog.set_level("INFO", logger="analytics.request")
    response, taken = short_path(lambda: ShortcutClient().post(EVENTS, event(), content_type="application/json",
                                                               headers=headers(secret)))
    assert taken and response.status_code == 201
    assert metrics.REGISTRY.get_sample_value(*sample) == before + 1
    line = [r for r in caplog.records if r.name == "analytics.request"][-1]
    assert line.getMessage().startswith(f"POST {EVENTS} 201 ") and line.key_prefix == secret.split(".")[0]


def wsgi_post(body, secret, started=None):
    """The server's own WSGI application (analytics_site.wsgi), called as gunicorn calls it."""
    started = [] if started is None else started
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": EVENTS, "SCRIPT_NAME": "", "QUERY_STRING": "",
               "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": "8006", "HTTP_HOST": "127.0.0.1:8006", "HTTP_AUTHORIZATION": f"Api-Key {secret}",
               "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "SERVER_PROTOCOL": "HTTP/1.1",
               "REMOTE_ADDR": "127.0.0.1", "wsgi.errors": io.StringIO()}
    chunks = application(environ, lambda status, hdrs, exc_info=None: started.append(status))
    try:
        payload = b"".join(chunks)
        started.append("body taken")
        return started[0], payload
    finally:
        getattr(chunks, "close", lambda: None)()


def test_the_servers_wsgi_application_takes_the_short_path_and_hands_the_body_on(ch):
    secret = key("ingest")
    finished = []

    def on_finished(**kwargs):
        finished.append(started_answers[:])

    started_answers = []
    request_finished.connect(on_finished, dispatch_uid="shortcut-test")
    try:
        status, body = wsgi_post(json.dumps(event()).encode(), secret, started_answers)
    finally:
        request_finished.disconnect(dispatch_uid="shortcut-test")
    assert status == "201 Created" and json.loads(body)["event_type"] == "start"
    # Django's request_finished (closing the connections the flush used) once the answer was
    # started and its body handed over, not before: the leader of a flush answers first.
    assert finished == [["201 Created", "body taken"]]
    status, body = wsgi_post(json.dumps(event(movie_id="nope")).encode(), secret)  # Django re-reads the body
    assert status.startswith("400") and "movie_id" in json.loads(body)
    assert stored() == 1


def test_anything_unforeseen_before_the_store_is_left_to_django(ch, monkeypatch):
    secret = key("ingest")

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the short path")

    monkeypatch.setattr("viewing.event_shortcut.normalize_event", broken)
    response, taken = short_path(lambda: ShortcutClient().post(EVENTS, event(), content_type="application/json",
                                                               headers=headers(secret)))
    assert not taken and response.status_code == 201  # Django's own path stored it
    assert stored() == 1


def test_every_middleware_of_the_django_path_is_one_the_short_path_accounts_for():
    """A middleware added later would silently not run for accepted single events: this fails
    until event_shortcut.MIRRORED_MIDDLEWARE (and what the module does) is brought along."""
    from django.conf import settings

    from viewing.event_shortcut import MIRRORED_MIDDLEWARE

    assert tuple(settings.MIDDLEWARE) == MIRRORED_MIDDLEWARE
