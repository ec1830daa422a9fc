"""Django settings, read from the environment and the git-ignored .env file
(analytics_site/environment.py); each variable is documented once, in .env.example."""

import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from analytics_site.environment import BASE_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default=None)
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off: set it in the environment, "
            "or run `make run` once, which writes a .env with a generated key and DJANGO_DEBUG=true "
            "for local development."
        )
    SECRET_KEY = "insecure-development-key-only-for-debug"

# The address gunicorn listens on (analytics_site/gunicorn_conf.py): 127.0.0.1 unless told
# otherwise, because `make run` serves the API open until the first key exists. The image
# sets 0.0.0.0. In development a wider bind is the one setting that opens the dashboard to
# another device: the host names it may be reached by are then not known in advance, so with
# DEBUG on and ALLOWED_HOSTS unset any Host is accepted.
BIND_ADDRESS = env("BIND_ADDRESS", default="127.0.0.1")
PORT = env.int("PORT", default=8006)
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
_default_hosts = ["localhost", "127.0.0.1", "[::1]"]
if DEBUG and BIND_ADDRESS not in LOOPBACK:
    _default_hosts = ["*"]
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=_default_hosts)

# --- Transport security (docs/operations.md, Security) -----------------------------------------
# DJANGO_TLS=true when clients reach the service over HTTPS (TLS ends at a proxy in front):
# HTTP is redirected to HTTPS (except the /health and /ready probes), HSTS is sent and the
# session and CSRF cookies are Secure. Off by default so that plain-HTTP clients, probes and
# `curl localhost:8006/...` inside docker-compose keep working.
DJANGO_TLS = env.bool("DJANGO_TLS", default=False)
SECURE_SSL_REDIRECT = DJANGO_TLS
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000) if DJANGO_TLS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = DJANGO_TLS
# The header a TLS-terminating proxy sets, e.g. X-Forwarded-Proto; only set it when the
# proxy always overwrites that header (otherwise clients could claim HTTPS).
_proxy_ssl_header = env("SECURE_PROXY_SSL_HEADER", default=None)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from here, no CDN
    "clickhouse_backend",
    "rest_framework_api_key",
    "analytics_site.access",  # scoped API keys (default database)
    "analytics_site.privacy",  # erasure records (default database)
    "viewing",
]

MIDDLEWARE = [
    "analytics_site.middleware.RequestLogMiddleware",
    # Every error response outside the admin leaves as JSON (DEBUG on or off).
    "analytics_site.exceptions.JsonErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "analytics_site.urls"
WSGI_APPLICATION = "analytics_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Overrides of third-party templates (ReDoc's page without its Google Fonts links).
        "DIRS": [BASE_DIR / "analytics_site" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# --- Databases --------------------------------------------------------------------------
# `default` keeps Django's own tables (users, sessions, admin log); `clickhouse` keeps the
# viewing events. analytics_site.db_router sends the viewing app to `clickhouse`.
VAR_DIR = Path(env("ANALYTICS_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'django.sqlite3'}")
}

CLICKHOUSE_HOST = env("CLICKHOUSE_HOST", default=None)
CLICKHOUSE_DATABASE = env("CLICKHOUSE_DATABASE", default="analytics")
CLICKHOUSE_DATA_DIR = str(Path(env("CLICKHOUSE_DATA_DIR", default=str(VAR_DIR / "clickhouse"))).resolve())
CLICKHOUSE_EMBEDDED = CLICKHOUSE_HOST is None
# A ClickHouse cluster name (server mode): migrations create Replicated*MergeTree `*_local`
# tables ON CLUSTER and Distributed tables over them (viewing/ddl_objects.py).
CLICKHOUSE_CLUSTER = env("CLICKHOUSE_CLUSTER", default=None)
# Server mode: exports stream the server's formatted output over its HTTP interface
# (analytics_site/chdb_backend/streaming.py); the native protocol carries only Native blocks.
CLICKHOUSE_HTTP_PORT = env.int("CLICKHOUSE_HTTP_PORT", default=8123)
# Settings sent with every query. Inserts are synchronous unless a caller asks otherwise
# (chdb's session default is async_insert=1).
CLICKHOUSE_QUERY_SETTINGS = {
    "async_insert": 0,
    # Room for the id list of a de-duplication look-up (viewing/services.py, LOOKUP_CHUNK).
    "max_query_size": 16 * 1024 * 1024,
    "max_execution_time": env.int("CLICKHOUSE_QUERY_TIMEOUT", default=30),
}
# Which tables fsync each new part, so an acknowledged insert survives a power cut: "stored"
# (the raw events, the id look-up, the suppression list; aggregates are rebuilt from the raw
# table), "all" or "off" (viewing/durability.py). Applied by migrate.
CLICKHOUSE_FSYNC = env.str("CLICKHOUSE_FSYNC", default="stored")
# Parts below this many bytes keep their files in one archive (viewing/part_storage.py): an
# insert creates ~10 files instead of ~130. 0: off. Applied by migrate where ClickHouse has it.
CLICKHOUSE_PACKED_PART_BYTES = env.int("CLICKHOUSE_PACKED_PART_BYTES", default=10 * 1024 * 1024)
# Settings added to every INSERT of events (viewing/services.py), e.g. a memory cap for
# inserts ({"max_memory_usage": ...}); none by default. Tests use it to make inserts fail.
CLICKHOUSE_INSERT_SETTINGS: dict = {}
# HTTP batches in the common shape are read, checked and inserted by the embedded engine
# itself (viewing/engine_stage.py); false: every batch through the Python rules. Ignored on
# a ClickHouse server.
ENGINE_CHECKS = env.bool("ENGINE_CHECKS", default=True)
if CLICKHOUSE_EMBEDDED:
    DATABASES["clickhouse"] = {
        "ENGINE": "analytics_site.chdb_backend",
        "NAME": CLICKHOUSE_DATABASE,
        "OPTIONS": {"path": CLICKHOUSE_DATA_DIR, "settings": CLICKHOUSE_QUERY_SETTINGS},
        "TEST": {"NAME": f"test_{CLICKHOUSE_DATABASE}"},
    }
else:
    DATABASES["clickhouse"] = {
        "ENGINE": "clickhouse_backend.backend",
        "HOST": CLICKHOUSE_HOST,
        "PORT": env.int("CLICKHOUSE_PORT", default=9000),
        "NAME": CLICKHOUSE_DATABASE,
        "USER": env("CLICKHOUSE_USER", default="default"),
        "PASSWORD": env("CLICKHOUSE_PASSWORD", default=""),
        "OPTIONS": {
            "settings": CLICKHOUSE_QUERY_SETTINGS,
            "connect_timeout": env.int("CLICKHOUSE_CONNECT_TIMEOUT", default=5),
            "send_receive_timeout": env.int("CLICKHOUSE_QUERY_TIMEOUT", default=30),
        },
        "TEST": {"NAME": f"test_{CLICKHOUSE_DATABASE}"},
    }
    if CLICKHOUSE_CLUSTER:
        # Inserts through Distributed tables return once every shard has its rows, so a
        # de-duplication look-up right after sees them.
        CLICKHOUSE_QUERY_SETTINGS["distributed_foreground_insert"] = 1
        DATABASES["clickhouse"]["OPTIONS"].update(
            migration_cluster=CLICKHOUSE_CLUSTER, distributed_migrations=True
        )
DATABASE_ROUTERS = ["analytics_site.db_router.ClickHouseRouter"]
# The admin's date_hierarchy on ViewingEvent.event_time is fine at run time (the ClickHouse field
# subclasses Django's DateTimeField), but the check compares get_internal_type() with
# "DateTimeField" and sees "ClickhouseDateTimeField"; unsilenced it stops every manage.py command.
# SILENCED_SYSTEM_CHECKS in the environment adds to it (comma-separated), e.g. viewing.W001 where
# the data directory's file system is a known choice (viewing/checks.py).
SILENCED_SYSTEM_CHECKS = ["admin.E128", *env.list("SILENCED_SYSTEM_CHECKS", default=[])]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Viewing data -------------------------------------------------------------------------
RETENTION_DAYS = env.int("RETENTION_DAYS", default=365)

# --- Kafka --------------------------------------------------------------------------------
KAFKA_BOOTSTRAP_SERVERS = env("KAFKA_BOOTSTRAP_SERVERS", default="localhost:9092")
KAFKA_TOPICS = env.list("KAFKA_TOPICS", default=["stream.start", "stream.progress", "stream.stop"])
KAFKA_CONSUMER_GROUP = env("KAFKA_CONSUMER_GROUP", default="analytics-service")
KAFKA_DLQ_TOPIC = env("KAFKA_DLQ_TOPIC", default="stream.dlq")
ENABLE_KAFKA = env.bool("ENABLE_KAFKA", default=True)
# Tansu (the test broker) holds a JoinGroup until session_timeout/2: a short session keeps the
# first poll of a new group at a few seconds instead of ~23 s with kafka-python's default.
KAFKA_SESSION_TIMEOUT_MS = env.int("KAFKA_SESSION_TIMEOUT_MS", default=10000)
KAFKA_HEARTBEAT_INTERVAL_MS = env.int("KAFKA_HEARTBEAT_INTERVAL_MS", default=3000)
KAFKA_MAX_POLL_INTERVAL_MS = env.int("KAFKA_MAX_POLL_INTERVAL_MS", default=300000)
# Messages per insert: the engine's fixed cost per insert (a part per table) is paid once per
# batch (docs/performance.md). A batch also ends at KAFKA_BATCH_BYTES of message values, so
# large messages do not make a batch large in memory (two batches are held: one being stored
# while the next is read).
KAFKA_BATCH_SIZE = env.int("KAFKA_BATCH_SIZE", default=20000)
KAFKA_BATCH_BYTES = env.int("KAFKA_BATCH_BYTES", default=32 * 1024 * 1024)
KAFKA_FLUSH_INTERVAL = env.float("KAFKA_FLUSH_INTERVAL", default=1.0)
# Stop (instead of dead-lettering the whole topic) when this many messages in a row are invalid.
KAFKA_POISON_LIMIT = env.int("KAFKA_POISON_LIMIT", default=1000)
# Longest wait between attempts to store a batch while ClickHouse is unavailable (seconds).
KAFKA_RETRY_BACKOFF_MAX = env.float("KAFKA_RETRY_BACKOFF_MAX", default=30.0)
# How long the consumer tries to reach the brokers at start before it reports them missing.
KAFKA_BOOTSTRAP_TIMEOUT_MS = env.int("KAFKA_BOOTSTRAP_TIMEOUT_MS", default=10000)

# --- HTTP API -----------------------------------------------------------------------------
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024  # bodies over 10 MiB get 413
# Single events are stored through a group-commit buffer (viewing/ingest_buffer.py): under
# load a flush starts at most every INGEST_FLUSH_INTERVAL seconds, or at once when
# INGEST_FLUSH_EVENTS are waiting; when idle, at once. 0.2 s: each insert costs the engine a
# fixed ~50-130 ms of CPU (a part per table and view), so at most 5 a second whatever the
# arrival rate, and an event waits at most that long for its insert to start.
INGEST_FLUSH_INTERVAL = env.float("INGEST_FLUSH_INTERVAL", default=0.2)
INGEST_FLUSH_EVENTS = env.int("INGEST_FLUSH_EVENTS", default=1000)
# /ready answers 503 when ClickHouse's disk has less free space than this many bytes (unset:
# 1 GiB or 5 % of the disk, whichever is smaller), so traffic moves before inserts are refused.
READY_MIN_FREE_BYTES = env.int("READY_MIN_FREE_BYTES", default=None)
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["analytics_site.parsers.BoundedJSONParser"],
    "EXCEPTION_HANDLER": "analytics_site.exceptions.api_exception_handler",
    # An API key, or a staff session (the dashboard reads the API with it). docs/api.md, Authentication and access.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "analytics_site.access.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["analytics_site.access.permissions.ScopedAccess"],
    "DEFAULT_THROTTLE_CLASSES": ["analytics_site.access.throttling.ScopedKeyThrottle"],
    "UNAUTHENTICATED_USER": None,
}
# Requests per API key and scope ("N/s", "N/min", "N/hour", "N/day"; "none": no limit).
# Seconds a checked API key is remembered by the process (analytics_site/access/key_cache.py):
# a key revoked by another process stops working within this long; 0 looks every key up.
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=1.0)
API_THROTTLE_RATES = {
    scope: None if rate.lower() == "none" else rate
    for scope, rate in (
        ("ingest", env("API_THROTTLE_INGEST", default="6000/min")),
        ("read", env("API_THROTTLE_READ", default="1200/min")),
        # Each export streams up to the whole raw table; each erasure rebuilds aggregates.
        ("export", env("API_THROTTLE_EXPORT", default="60/min")),
        ("erase", env("API_THROTTLE_ERASE", default="60/min")),
    )
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Viewing analytics API",
    "DESCRIPTION": (
        "Viewing events in; popularity, user stats, trends, peak hours and engagement (summary, "
        "retention, concurrency, who is watching now) out, in any time zone, as JSON or CSV; a viewer's "
        "events erased or exported, and raw events exported as CSV, JSON lines or Parquet."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Swagger UI would fetch a validity badge from validator.swagger.io; nothing leaves the service.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # /api/schema/, /docs, /redoc: open with DEBUG on, else a key or a staff session.
    "SERVE_PERMISSIONS": ["analytics_site.access.permissions.DocsAccess"],
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every start when it is missing
# WhiteNoise serves the admin's and the dashboard's files from the apps, so gunicorn needs no
# web server in front of it and no collectstatic step.
WHITENOISE_USE_FINDERS = True

LOG_FORMAT = env("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "analytics_site.logging.JsonFormatter"},
    },
    "filters": {"without_traceback": {"()": "analytics_site.logging.WithoutTraceback"}},
    "handlers": {
        # Lines written by a writer thread in batches (analytics_site/log_writer.py): ~1,000
        # request lines a second otherwise queue on one lock around each write.
        "console": {"class": "analytics_site.log_writer.BatchedStreamHandler", "formatter": LOG_FORMAT,
                    "stream": sys.stderr},
        "console_short": {"class": "analytics_site.log_writer.BatchedStreamHandler", "formatter": LOG_FORMAT,
                          "stream": sys.stderr, "filters": ["without_traceback"]},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        # One line per request comes from analytics_site.middleware. Django's own line for a
        # 4xx ("Not Found: …", a PermissionDenied with its traceback) would repeat it; its
        # 5xx reports (with the traceback of an unexpected error) stay.
        "django.request": {"level": "ERROR"},
        # A refused Host header or a suspicious request: Django's one line, without a traceback.
        "django.security": {"handlers": ["console_short"], "propagate": False},
        # The driver logs each failed connection with a traceback; the service reports the
        # failure itself (503 and one log line, or one line from manage.py).
        "clickhouse_driver": {"level": "ERROR"},
        # kafka-python logs every failed connection attempt as an ERROR; the consumer logs one
        # clear line per attempt itself (viewing.kafka), so the client's own lines are opt-in.
        "kafka": {"level": env("KAFKA_CLIENT_LOG_LEVEL", default="CRITICAL")},
    },
}
