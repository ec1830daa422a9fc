"""The API keys a process has checked recently, so a request does not look its key up again.

Why: checking a key is an ORM query on Django's database (a new SQLite connection, the query,
closing it) — about a third of a single event's request CPU, and under a few hundred requests
a second the biggest share of the server's time. Here a key that checked out is remembered for
`API_KEY_CACHE_SECONDS` (default 1 s); after that the next request with it looks it up again.

What that means for revoking:
- A key revoked, changed or deleted *in this process* (the admin, `revoke_api_key` called
  from code, a test) stops working on the next request: saving or deleting any ApiKey empties
  the cache (signals).
- A key revoked by another process (`manage.py revoke_api_key` beside a running server, a
  second worker on a ClickHouse server, a bulk `QuerySet.update`) stops working within
  `API_KEY_CACHE_SECONDS`.
- Expiry is exact: the cached key carries its `expiry_date`, checked on every request.
- An unknown or wrong key is never remembered: each attempt is looked up (and refused).

Entries are keyed by a SHA-256 digest of the whole key (not the prefix: a different secret
with a known prefix never matches), so the process keeps no plain key text; at most
MAX_ENTRIES keys are remembered.
"""

import hashlib
import threading
import time

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import ApiKey

MAX_ENTRIES = 1000

_entries: dict[bytes, tuple[ApiKey, float]] = {}
_lock = threading.Lock()
# Bumped by every invalidation, so a look-up that started before a revocation does not
# put the key back into the cache after it was emptied.
_generation = 0


def api_key_checked(key: str) -> ApiKey:
    """The stored, unrevoked ApiKey whose hash matches `key` (ApiKey.DoesNotExist otherwise);
    from the cache when it was looked up less than API_KEY_CACHE_SECONDS ago."""
    ttl = settings.API_KEY_CACHE_SECONDS
    if ttl <= 0:
        return ApiKey.objects.get_from_key(key)
    digest = hashlib.sha256(key.encode()).digest()
    now = time.monotonic()
    entry = _entries.get(digest)
    if entry is not None and now - entry[1] < ttl:
        return entry[0]
    generation = _generation
    api_key = ApiKey.objects.get_from_key(key)  # raises DoesNotExist: nothing remembered
    with _lock:
        if generation == _generation:
            if len(_entries) >= MAX_ENTRIES:
                _entries.clear()
            _entries[digest] = (api_key, now)
    return api_key


def api_keys_forget() -> None:
    """Forget every remembered key: the next request with any key looks it up again."""
    global _generation
    with _lock:
        _generation += 1
        _entries.clear()


@receiver(post_save, sender=ApiKey, dispatch_uid="api_key_cache_save")
@receiver(post_delete, sender=ApiKey, dispatch_uid="api_key_cache_delete")
def _api_key_changed(sender, **kwargs):
    api_keys_forget()
