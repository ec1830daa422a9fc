"""The short way through the server for a single event (`POST /api/v1/analytics/events`).

Why: under an open-loop load every player's event is its own request, and on the embedded
engine one process (one GIL) serves them all. Through Django and DRF a request cost ~1.2 ms
of CPU in the server (its middleware, the request and response objects, DRF's negotiation,
authentication, parsing and serializers) against ~0.4 ms for gunicorn itself, which caps a
2-core machine well below 1,000 events/s. This path does what that stack does for a
well-formed, authorized event, with the same pieces, and nothing else:

- the key: the same header forms and format check, the same cached look-up
  (analytics_site/access/key_cache.py), expiry and the `ingest` scope;
- the same per-key throttle (ScopedKeyThrottle), the same body limit;
- the body parsed as JSON (orjson) and checked by viewing.events.normalize_event with the
  arguments EventInputSerializer gives it — the one definition of the rules;
- stored through the same group-commit buffer (viewing/ingest_buffer.py): the 201 is sent
  once the event is stored, and an insert that fails is answered by the project's exception
  handler (503, 507 for a full disk), exactly as from the view;
- the 201's body rendered by DRF's JSONRenderer from stored_event_body, the same headers as
  the Django path (tests compare both), one log line and one latency observation as
  RequestLogMiddleware writes them.

Anything else — no key or a refused one, a throttled key, another content type or Accept,
a query string, a body that is not a JSON object, an event the rules refuse, a Host not
allowed, HTTP where HTTPS is required — is left to Django untouched (the body handed back
as it came), so every error answer is the one Django and DRF give. A refused request costs
its own path twice over; only accepted events take the short one.
"""

import io
import json
import logging
import time
from http import HTTPStatus

import orjson
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.http.request import split_domain_port, validate_host
from rest_framework.renderers import JSONRenderer

from analytics_site.access.authentication import KEY_FORMAT, key_from_request
from analytics_site.access.key_cache import api_key_checked
from analytics_site.access.models import ApiKey
from analytics_site.access.throttling import ScopedKeyThrottle
from analytics_site.exceptions import api_exception_handler
from analytics_site.middleware import request_logged

from . import clock
from .events import normalize_event
from .ingest_buffer import event_ingest
from .serializers import stored_event_body

PATH = "/api/v1/analytics/events"
ROUTE = "api/v1/analytics/events"  # the URL pattern, as RequestLogMiddleware labels it
_JSON_TYPES = {"application/json", "application/json; charset=utf-8", "application/json;charset=utf-8"}
_ACCEPT_ANY = {"", "*/*", "application/json", "application/*"}
_RENDERER = JSONRenderer()
# The middleware whose effect on an accepted event this module reproduces (headers, host and
# HTTPS checks, the log line). A middleware added to settings.MIDDLEWARE would not run for
# the events answered here: tests/viewing/test_event_shortcut.py fails until this list, and
# this module, say what it means for them.
MIRRORED_MIDDLEWARE = (
    "analytics_site.middleware.RequestLogMiddleware",
    "analytics_site.exceptions.JsonErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)
# Django's logger of unexpected errors: a bug here is logged as one in a view would be.
_errors = logging.getLogger("django.request")


class _Request:
    """What key_from_request, ScopedKeyThrottle and the exception handler read of a request."""

    __slots__ = ("META", "auth", "user", "method")

    def __init__(self, environ, api_key=None):
        self.META = environ
        self.auth = api_key
        self.user = None
        self.method = "POST"


class _View:
    access_scope = "ingest"


def _secure(environ) -> bool:
    if environ.get("wsgi.url_scheme") == "https":
        return True
    header = settings.SECURE_PROXY_SSL_HEADER
    if header:
        name, value = header
        return environ.get(name, "").split(",")[0].strip() == value
    return False


def _host_allowed(environ) -> bool:
    if settings.USE_X_FORWARDED_HOST:
        return False  # Django's own rules for it
    host = environ.get("HTTP_HOST")
    if not host:  # HttpRequest._get_raw_host's fallback
        host = environ.get("SERVER_NAME", "")
        port = str(environ.get("SERVER_PORT", ""))
        if port != ("443" if _secure(environ) else "80"):
            host = f"{host}:{port}"
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed)


def _headers(secure, length):
    # What the Django path adds to every answer of this view (SecurityMiddleware,
    # XFrameOptionsMiddleware, DRF's Allow); tests/viewing/test_event_shortcut.py compares them.
    headers = [
        ("Content-Type", "application/json"),
        ("Allow", "POST, OPTIONS"),
        ("X-Frame-Options", settings.X_FRAME_OPTIONS),
        ("Content-Length", str(length)),
    ]
    if secure and settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        headers.append(("Strict-Transport-Security", hsts))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        headers.append(("Referrer-Policy", settings.SECURE_REFERRER_POLICY))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    return headers


def _authorized(environ):
    """The ApiKey that may ingest, or None (then Django answers, as it would anyway)."""
    key = key_from_request(_Request(environ))
    if key is None or not KEY_FORMAT.fullmatch(key):
        return None
    try:
        api_key = api_key_checked(key)
    except ApiKey.DoesNotExist:
        return None
    if api_key.has_expired or not api_key.has_scope("ingest"):
        return None
    return api_key


def event_shortcut(environ):
    """Answer a well-formed, authorized single event: (status line, headers, body), or None
    for Django to answer (environ['wsgi.input'] then reads the same body again). With an
    answer the caller sends Django's request_finished once the answer is written
    (`request_done`), as Django does when the server closes its response."""
    if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != PATH or environ.get("QUERY_STRING"):
        return None
    if environ.get("CONTENT_TYPE", "").lower() not in _JSON_TYPES or environ.get("HTTP_ACCEPT", "") not in _ACCEPT_ANY:
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        return None
    if not 0 <= length <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return None
    secure = _secure(environ)
    if (settings.SECURE_SSL_REDIRECT and not secure) or not _host_allowed(environ):
        return None
    started = time.perf_counter()
    # Django's two signals, as its handler sends them: their receivers close the database
    # connections a request leaves (a key look-up, the insert) as they would after a view.
    request_started.send(sender=__name__, environ=environ)
    answer = None
    try:
        answer = _answer(environ, length, secure, started)
        return answer
    finally:
        if answer is None:
            request_done()


def request_done() -> None:
    """Django's request_finished for an answered event. After the answer is sent, not before:
    closing the engine connection a flush used waits while another insert runs, and the
    request that led the flush would wait for it too."""
    request_finished.send(sender=__name__)


def _answer(environ, length, secure, started):
    # Until the event is handed to the buffer nothing has happened that Django would not do
    # again: whatever goes wrong before (a refused event, not JSON, the keys' database failing,
    # anything unforeseen) is Django's to answer, the way it answers it.
    try:
        api_key = _authorized(environ)
    except Exception:
        return None
    if api_key is None:
        return None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)  # for Django, if it answers after all
    try:
        data = orjson.loads(body)
        if type(data) is not dict:
            return None
        now = clock.now()
        event = normalize_event(data, now=now, retention_days=settings.RETENTION_DAYS, default_time=now)
    except Exception:  # EventInvalid above all
        return None
    # Checked after the rules, as DRF counts a request before its view runs: a refused event
    # goes to Django uncounted here, so it is counted once; a throttled one twice (over anyway).
    request = _Request(environ, api_key)
    if not ScopedKeyThrottle().allow_request(request, _View):
        return None  # Django answers the 429
    # The 201's body is rendered before the wait: when a flush is done, every request it held
    # wakes at once and they answer one after the other under the GIL, so what each does after
    # its flush is what the last of a few hundred waits for.
    created = _RENDERER.render(stored_event_body(event))
    try:
        event_ingest(event=event)
    except Exception as exc:
        response = api_exception_handler(exc, {"request": request})
        if response is None:  # not a storage error: a bug, answered as Django answers one
            _errors.error("Internal Server Error: %s", PATH, exc_info=True)
            status, payload = 500, json.dumps({"detail": "Internal Server Error"}).encode()
        else:
            status, payload = response.status_code, _RENDERER.render(response.data)
    else:
        status, payload = 201, created
    seconds = time.perf_counter() - started
    request_logged(method="POST", path=PATH, route=ROUTE, status=status, seconds=seconds, key_prefix=api_key.prefix)
    return f"{status} {HTTPStatus(status).phrase}", _headers(secure, len(payload)), payload


def with_event_shortcut(application):
    """The WSGI application `application` with single events answered by event_shortcut."""

    def shortcut_application(environ, start_response):
        answer = event_shortcut(environ)
        if answer is None:
            return application(environ, start_response)
        status, headers, payload = answer
        start_response(status, headers)
        return _Body([payload])

    return shortcut_application


class _Body(list):
    """The answer's body; the server calls close() once it is sent (PEP 3333)."""

    def close(self):
        request_done()
