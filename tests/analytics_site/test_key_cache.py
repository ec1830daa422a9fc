"""The per-process cache of checked API keys (analytics_site/access/key_cache.py): a key is
looked up once per API_KEY_CACHE_SECONDS, and a revoked, changed or expired key still stops
working promptly (docs/operations.md, API keys)."""

import time
import uuid
from datetime import timedelta

from django.db import connections
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics_site.access import key_cache
from analytics_site.access.models import SCOPES, ApiKey
from tests.conftest import query

EVENTS = "/api/v1/analytics/events"
READ = "/api/v1/analytics/realtime"


def key(*scopes, **fields):
    return ApiKey.objects.create_key(name="cache", **{f"can_{s}": s in scopes for s in SCOPES}, **fields)


def get(secret):
    return Client().get(READ, headers={"Authorization": f"Api-Key {secret}"})


def key_lookups(secret):
    """(status, queries on Django's database) of one read with `secret`."""
    with CaptureQueriesContext(connections["default"]) as queries:
        status = get(secret).status_code
    return status, len(queries)


@override_settings(API_KEY_CACHE_SECONDS=60)
def test_a_key_is_looked_up_once_and_a_wrong_secret_with_its_prefix_never_matches(ch):
    stored, secret = key("read")
    assert key_lookups(secret) == (200, 1)
    assert key_lookups(secret) == (200, 0)  # remembered
    wrong = f"{stored.prefix}.{'A' * 32}"
    assert key_lookups(wrong) == (401, 1)
    assert key_lookups(wrong) == (401, 1)  # a refused key is looked up every time
    assert get(wrong).json() == {"detail": "Invalid API key."}


@override_settings(API_KEY_CACHE_SECONDS=0)
def test_zero_seconds_looks_every_key_up(ch):
    _, secret = key("read")
    assert key_lookups(secret) == (200, 1)
    assert key_lookups(secret) == (200, 1)


@override_settings(API_KEY_CACHE_SECONDS=60)
def test_revoking_in_this_process_applies_to_the_next_request(ch):
    stored, secret = key("ingest", "read")
    event = {"user_id": str(uuid.uuid4()), "movie_id": str(uuid.uuid4()), "event_type": "start"}
    headers = {"Authorization": f"Api-Key {secret}"}
    assert Client().post(EVENTS, event, content_type="application/json", headers=headers).status_code == 201
    stored.revoked = True
    stored.save()  # what the admin and revoke_api_key do
    refused = Client().post(EVENTS, {**event, "user_id": str(uuid.uuid4())}, content_type="application/json",
                            headers=headers)
    assert refused.status_code == 401
    assert query("SELECT count() FROM viewing_events") == [(1,)]


@override_settings(API_KEY_CACHE_SECONDS=60)
def test_a_scope_taken_away_or_a_key_deleted_in_this_process_applies_at_once(ch):
    stored, secret = key("read")
    assert get(secret).status_code == 200
    stored.can_read = False
    stored.save()
    assert get(secret).status_code == 403
    stored.delete()
    assert get(secret).status_code == 401


def test_a_key_revoked_by_another_process_stops_within_the_cache_seconds(ch):
    stored, secret = key("read")
    with override_settings(API_KEY_CACHE_SECONDS=0.3):
        assert get(secret).status_code == 200
        # Another process's write: no signal reaches this one (a bulk update sends none either).
        ApiKey.objects.filter(pk=stored.pk).update(revoked=True)
        assert get(secret).status_code == 200  # still remembered: the documented delay
        time.sleep(0.35)  # the cache's own clock, not data
        assert get(secret).status_code == 401


@override_settings(API_KEY_CACHE_SECONDS=60)
def test_expiry_is_exact_with_the_key_remembered(ch):
    _, secret = key("read", expiry_date=timezone.now() + timedelta(seconds=0.5))
    assert get(secret).status_code == 200
    time.sleep(0.6)  # past the key's expiry, not data
    expired = get(secret)
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]


def test_the_cache_is_bounded_and_keeps_no_key_text(ch):
    with override_settings(API_KEY_CACHE_SECONDS=60):
        secrets = [key("read")[1] for _ in range(3)]
        for secret in secrets:
            assert get(secret).status_code == 200
        assert len(key_cache._entries) >= 3
        assert not any(secret.encode() in digest or len(digest) != 32 for digest in key_cache._entries
                       for secret in secrets)
        key_cache.api_keys_forget()
        old_max, key_cache.MAX_ENTRIES = key_cache.MAX_ENTRIES, 2
        try:
            for secret in secrets:
                assert get(secret).status_code == 200
            assert len(key_cache._entries) <= 2
        finally:
            key_cache.MAX_ENTRIES = old_max
