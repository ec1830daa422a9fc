"""Per-key rate limits, one per scope (settings API_THROTTLE_INGEST, API_THROTTLE_READ).

A fixed window counter (one cache entry per key, scope and window, `incr`ed): cheap at
thousands of requests a minute, where DRF's sliding log would rewrite a list of as many
timestamps on every request. Counters live in Django's cache; the default local-memory cache
counts per process, so with N gunicorn workers a key gets up to N times the rate. A proxy in
front should rate-limit too (docs/api.md, Limits and throttling).
"""

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle

from .models import ApiKey


class ScopedKeyThrottle(SimpleRateThrottle):
    def __init__(self):  # the rate depends on the view's scope: read in allow_request
        self.wait_seconds = None

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.prefix}"
        elif request.user is not None:
            ident = f"user:{request.user.pk}"
        else:  # open mode (DEBUG, no key yet)
            ident = f"ip:{self.get_ident(request)}"
        return f"throttle:{view.access_scope}:{ident}"

    def allow_request(self, request, view):
        scope = getattr(view, "access_scope", None)
        rate = settings.API_THROTTLE_RATES.get(scope)
        if not rate:
            return True
        allowed, period = self.parse_rate(rate)
        now = time.time()
        window = int(now // period)
        key = f"{self.get_cache_key(request, view)}:{window}"
        cache.add(key, 0, timeout=period + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=period + 1)
            count = 1
        if count > allowed:
            self.wait_seconds = (window + 1) * period - now
            return False
        return True

    def wait(self):
        return self.wait_seconds
