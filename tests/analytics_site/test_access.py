"""API keys and scopes, staff sessions, the DEBUG-on open mode, throttling (docs/api.md, Authentication and access)."""

import io
import logging
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.utils import timezone

from analytics_site.access.models import SCOPES, ApiKey
from analytics_site.access.permissions import log_access_mode
from tests.conftest import query

BASE = "/api/v1/analytics"
READS = [
    f"{BASE}/content/popular",
    f"{BASE}/user/{uuid.UUID(int=1)}/stats",
    f"{BASE}/trends",
    f"{BASE}/peak-hours",
]
WRITES = [f"{BASE}/events", f"{BASE}/events/batch"]


def event():
    return {"user_id": str(uuid.uuid4()), "movie_id": str(uuid.uuid4()), "event_type": "start"}


def post(client, path, **headers):
    body = [event()] if path.endswith("batch") else event()
    return client.post(path, body, content_type="application/json", headers=headers)


def nothing_stored():
    return query("SELECT count() FROM viewing_events") == [(0,)]


def key(*scopes, **fields):
    return ApiKey.objects.create_key(name="t", **{f"can_{s}": s in scopes for s in SCOPES}, **fields)


def auth(secret):
    return {"Authorization": f"Api-Key {secret}"}


@pytest.mark.parametrize("path", READS + WRITES)
def test_without_a_key_every_api_endpoint_is_a_json_401(ch, path):
    response = post(Client(), path) if path in WRITES else Client().get(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"
    assert "Api-Key" in response.json()["detail"]
    assert nothing_stored()


BAD_KEYS = {
    "unknown": "abcdEFGH.abcdefghijklmnopqrstuvwxyzABCDEF",
    "malformed": "not-a-key",
    "nul byte": "abcdEFGH.\x00bcdefghijklmnopqrstuvwxyzABCDEF",
    "huge": "a" * 100_000,
    "sql": "x' OR '1'='1",
}


@pytest.mark.parametrize("bad", BAD_KEYS, ids=list(BAD_KEYS))
@pytest.mark.parametrize("path", [WRITES[0], WRITES[1], READS[0]])
def test_a_bad_key_is_a_401_and_nothing_is_written(ch, path, bad):
    key("ingest", "read")  # keys exist; the one sent is not one of them
    headers = auth(BAD_KEYS[bad])
    response = post(Client(), path, **headers) if path in WRITES else Client().get(path, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid API key."}
    assert nothing_stored()


def test_revoked_and_expired_keys_are_refused(ch):
    revoked, revoked_secret = key("ingest")
    revoked.revoked = True
    revoked.save()
    _, expired_secret = key("ingest", expiry_date=timezone.now() - timedelta(seconds=1))
    assert post(Client(), WRITES[0], **auth(revoked_secret)).status_code == 401
    expired = post(Client(), WRITES[0], **auth(expired_secret))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    assert nothing_stored()


@pytest.mark.parametrize("path", WRITES)
def test_a_read_key_cannot_write(ch, path):
    _, secret = key("read")
    response = post(Client(), path, **auth(secret))
    assert response.status_code == 403
    assert response.json() == {"detail": "This API key does not have the 'ingest' scope."}
    assert nothing_stored()


@pytest.mark.parametrize("path", READS)
def test_an_ingest_key_cannot_read(ch, path):
    _, secret = key("ingest")
    response = Client().get(path, headers=auth(secret))
    assert response.status_code == 403
    assert response.json() == {"detail": "This API key does not have the 'read' scope."}


def test_keys_with_their_scopes_work_in_either_header(ch):
    _, ingest = key("ingest")
    _, read = key("read")
    assert post(Client(), WRITES[0], **auth(ingest)).status_code == 201
    assert post(Client(), WRITES[1], **{"X-API-Key": ingest}).status_code == 201
    assert Client().get(READS[2], headers={"X-API-Key": read}).status_code == 200
    assert Client().get(READS[2], headers={"Authorization": f"api-key {read}"}).status_code == 200
    assert query("SELECT count() FROM viewing_events") == [(2,)]


def test_staff_sessions_may_read_but_not_write_and_other_users_neither(ch):
    staff, user = Client(), Client()
    staff.force_login(User.objects.create_user("ops", is_staff=True))
    user.force_login(User.objects.create_user("viewer"))
    for path in READS:
        assert staff.get(path).status_code == 200
        assert user.get(path).status_code == 403
    assert post(staff, WRITES[0]).status_code == 403  # the session grants reading only
    assert post(Client(enforce_csrf_checks=True), WRITES[0]).status_code == 401
    assert nothing_stored()


def test_debug_on_without_any_key_is_open_and_closes_once_a_key_exists(ch):
    with override_settings(DEBUG=True):
        assert post(Client(), WRITES[0]).status_code == 201
        assert Client().get(READS[0]).status_code == 200
        key("read")
        assert post(Client(), WRITES[0]).status_code == 401
    assert query("SELECT count() FROM viewing_events") == [(1,)]


def test_debug_off_without_any_key_is_closed(ch):
    assert not ApiKey.objects.exists()
    assert post(Client(), WRITES[0]).status_code == 401
    assert nothing_stored()


def test_the_start_up_line_says_whether_the_api_is_open(db, caplog):
    with caplog.at_level(logging.INFO, logger="analytics_site.access.permissions"):
        with override_settings(DEBUG=True):
            log_access_mode()
        key("read")
        with override_settings(DEBUG=True):
            log_access_mode()
    (opened, closed) = caplog.records
    assert opened.levelno == logging.WARNING and "API access is OPEN" in opened.getMessage()
    assert closed.levelno == logging.INFO and closed.getMessage() == "API keys required (1 active)."


@pytest.mark.parametrize("bad", [None, "abcdEFGH.abcdefghijklmnopqrstuvwxyzABCDEF"])
def test_health_and_ready_stay_open(ch, bad):
    headers = auth(bad) if bad else {}
    assert Client().get("/health", headers=headers).status_code == 200
    assert Client().get("/ready", headers=headers).status_code == 200


def test_metrics_need_a_read_key_or_staff(ch):
    _, read = key("read")
    _, ingest = key("ingest")
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", headers=auth(ingest)).status_code == 403
    scraped = Client().get("/metrics", headers={**auth(read), "Accept": "application/openmetrics-text"})
    assert scraped.status_code == 200 and b"analytics_http_request_duration_seconds" in scraped.content
    staff = Client()
    staff.force_login(User.objects.create_user("ops", is_staff=True))
    assert staff.get("/metrics").status_code == 200


@pytest.mark.parametrize("path", ["/api/schema/", "/docs", "/redoc"])
def test_docs_need_a_key_or_staff_with_debug_off_and_are_open_with_it_on(db, path):
    _, ingest = key("ingest")
    assert Client().get(path).status_code == 401
    assert Client().get(path, headers=auth(ingest)).status_code == 200
    staff = Client()
    staff.force_login(User.objects.create_user("ops", is_staff=True))
    assert staff.get(path).status_code == 200
    with override_settings(DEBUG=True):
        assert Client().get(path).status_code == 200


def test_create_api_key_prints_the_key_once_and_revoke_stops_it(ch):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "--name", "player-backend", "--scope", "ingest", stdout=out, stderr=err)
    secret = out.getvalue().strip()
    stored = ApiKey.objects.get(name="player-backend")
    assert secret.startswith(stored.prefix + ".") and stored.scopes == ["ingest"]
    assert secret not in stored.hashed_key and stored.hashed_key.startswith("sha512$$")
    assert "cannot be shown again" in err.getvalue() and secret not in err.getvalue()
    assert post(Client(), WRITES[0], **auth(secret)).status_code == 201
    call_command("revoke_api_key", stored.prefix, stdout=io.StringIO())
    assert post(Client(), WRITES[0], **auth(secret)).status_code == 401
    with pytest.raises(CommandError, match="No API key"):
        call_command("revoke_api_key", "nope")
    with pytest.raises(CommandError):
        call_command("create_api_key", "--name", "x", "--scope", "admin")


def test_create_api_key_refuses_an_expiry_in_the_past(ch):
    with pytest.raises(CommandError, match="in the past"):
        call_command("create_api_key", "--name", "old", "--scope", "read", "--expires", "2020-01-01T00:00:00Z",
                     stdout=io.StringIO(), stderr=io.StringIO())
    assert not ApiKey.objects.filter(name="old").exists()
    out = io.StringIO()
    call_command("create_api_key", "--name", "later", "--scope", "read", "--expires", "2999-06-30T00:00:00+02:00",
                 stdout=out, stderr=io.StringIO())
    assert Client().get(READS[2], headers=auth(out.getvalue().strip())).status_code == 200


def test_the_admin_creates_a_key_and_shows_it_once(ch):
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    response = admin.post(
        "/admin/access/apikey/add/", {"name": "dashboards", "can_read": "on"}, follow=True
    )
    assert response.status_code == 200
    (message,) = [str(m) for m in response.context["messages"] if "The API key for" in str(m)]
    secret = message.split("The API key for dashboards is: ")[1].split(". ")[0]
    assert ApiKey.objects.get(name="dashboards").scopes == ["read"]
    assert Client().get(READS[2], headers=auth(secret)).status_code == 200
    listing = admin.get("/admin/access/apikey/").content.decode()
    assert "dashboards" in listing and secret not in listing
    # The package's own unscoped key model is not offered: its keys would grant nothing.
    assert admin.get("/admin/rest_framework_api_key/apikey/").status_code == 404


@pytest.mark.parametrize("scope, path", [("read", READS[2]), ("ingest", WRITES[0])])
def test_throttled_per_key_and_scope_with_retry_after(ch, scope, path):
    _, first = key("ingest", "read")
    _, second = key("ingest", "read")

    def call(secret, p=path):
        return post(Client(), p, **auth(secret)) if p in WRITES else Client().get(p, headers=auth(secret))

    other_path = READS[2] if scope == "ingest" else WRITES[0]
    with override_settings(API_THROTTLE_RATES={"ingest": "3/day", "read": "3/day"}):
        assert [call(first).status_code for _ in range(3)] == [200 if scope == "read" else 201] * 3
        throttled = call(first)
        assert throttled.status_code == 429
        assert 0 < int(throttled["Retry-After"]) <= 86400
        assert "throttled" in throttled.json()["detail"]
        assert call(second).status_code in (200, 201)  # another key has its own budget
        assert call(first, other_path).status_code in (200, 201)  # and the other scope too
    assert query("SELECT count() FROM viewing_events") == [(4 if scope == "ingest" else 1,)]


def test_erase_and_export_are_scopes_of_their_own(ch):
    out = io.StringIO()
    call_command(
        "create_api_key", "--name", "privacy-desk", "--scope", "erase", "--scope", "export",
        stdout=out, stderr=io.StringIO(),
    )
    stored = ApiKey.objects.get(name="privacy-desk")
    assert stored.scopes == ["erase", "export"]
    assert stored.has_scope("erase") and not stored.has_scope("read") and not stored.has_scope("ingest")
    # Neither grants reading nor writing the analytics.
    secret = out.getvalue().strip()
    assert Client().get(READS[2], headers=auth(secret)).status_code == 403
    assert post(Client(), WRITES[0], **auth(secret)).status_code == 403
    _, both = key("ingest", "read")
    assert not ApiKey.objects.get_from_key(both).has_scope("erase")
    assert not ApiKey.objects.get_from_key(both).has_scope("export")


def test_the_admin_grants_erase_and_export_and_freezes_them_once_revoked(ch):
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    response = admin.post("/admin/access/apikey/add/", {"name": "dpo", "can_erase": "on", "can_export": "on"})
    assert response.status_code == 302
    stored = ApiKey.objects.get(name="dpo")
    assert stored.scopes == ["erase", "export"]
    listing = admin.get("/admin/access/apikey/").content.decode()
    assert "field-can_erase" in listing and "field-can_export" in listing
    stored.revoked = True
    stored.save()
    page = admin.get(f"/admin/access/apikey/{stored.pk}/change/").content.decode()
    assert 'name="can_erase"' not in page and 'name="can_export"' not in page


@pytest.mark.django_db(transaction=True)
def test_the_scopes_migration_keeps_existing_keys_and_reverses():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    _, secret = key("read")
    executor = MigrationExecutor(connection)
    executor.migrate([("access", "0001_initial")])
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("access", "0002_erase_export_scopes")])
    restored = ApiKey.objects.get_from_key(secret)
    assert restored.scopes == ["read"]
