"""Request middleware: one log line and one latency observation per request."""

import logging
import time

from . import metrics

log = logging.getLogger("analytics.request")


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        seconds = time.perf_counter() - started
        match = getattr(request, "resolver_match", None)
        # The route pattern, not the path: one series per endpoint, not one per user id.
        route = match.route if match else "unmatched"
        metrics.REQUEST_SECONDS.labels(route, request.method, response.status_code).observe(seconds)
        # DRF puts the authenticated key on the request it wraps: which client asked, by the
        # key's public prefix (never the key).
        key = getattr(getattr(request, "auth", None), "prefix", None)
        log.info(
            "%s %s %s %.1fms key=%s",
            request.method,
            request.path,
            response.status_code,
            seconds * 1000,
            key or "-",
            extra={
                "method": request.method,
                "path": request.path,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
                "key_prefix": key,
            },
        )
        return response
