"""Request middleware: one log line and one latency observation per request."""

import logging
import time

from . import metrics

log = logging.getLogger("analytics.request")


def request_logged(*, method: str, path: str, route: str, status: int, seconds: float, key_prefix: str | None) -> None:
    """The request's log line and latency observation (also written by the single-event
    short path, viewing/event_shortcut.py, which does not pass through this middleware)."""
    metrics.REQUEST_SECONDS.labels(route, method, status).observe(seconds)
    log.info(
        "%s %s %s %.1fms key=%s",
        method,
        path,
        status,
        seconds * 1000,
        key_prefix or "-",
        extra={
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "key_prefix": key_prefix,
        },
    )


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
        # DRF puts the authenticated key on the request it wraps: which client asked, by the
        # key's public prefix (never the key).
        key = getattr(getattr(request, "auth", None), "prefix", None)
        request_logged(method=request.method, path=request.path, route=route, status=response.status_code,
                       seconds=seconds, key_prefix=key)
        return response
