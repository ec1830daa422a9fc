"""Settings, all read from the environment (documented once: .env.example and docs/operations.md)."""

import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=None):
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_bool(name, default):
    value = env(name)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {value!r}")


def env_int(name, default):
    value = env(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def env_float(name, default):
    value = env(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from None


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off "
            "(set DJANGO_DEBUG=true for local development)."
        )
    SECRET_KEY = "insecure-development-key-only-for-debug"
ALLOWED_HOSTS = [h.strip() for h in env("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")]

# --- Transport security (docs/operations.md, Security) -----------------------------------------
# DJANGO_TLS=true when clients reach the service over HTTPS (TLS ends at a proxy in front):
# HTTP is redirected to HTTPS (except the /health and /ready probes), HSTS is sent and the
# session and CSRF cookies are Secure. Off by default so that plain-HTTP clients, probes and
# `curl localhost:8006/...` inside docker-compose keep working.
DJANGO_TLS = env_bool("DJANGO_TLS", False)
SECURE_SSL_REDIRECT = DJANGO_TLS
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000) if DJANGO_TLS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = DJANGO_TLS
# The header a TLS-terminating proxy sets, e.g. X-Forwarded-Proto; only set it when the
# proxy always overwrites that header (otherwise clients could claim HTTPS).
_proxy_ssl_header = env("SECURE_PROXY_SSL_HEADER")
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
        "DIRS": [],
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
VAR_DIR = Path(env("ANALYTICS_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'django.sqlite3'}"), conn_max_age=0
    )
}

CLICKHOUSE_HOST = env("CLICKHOUSE_HOST")
CLICKHOUSE_DATABASE = env("CLICKHOUSE_DATABASE", "analytics")
CLICKHOUSE_DATA_DIR = str(Path(env("CLICKHOUSE_DATA_DIR", str(VAR_DIR / "clickhouse"))).resolve())
CLICKHOUSE_EMBEDDED = CLICKHOUSE_HOST is None
# A ClickHouse cluster name (server mode): migrations create Replicated*MergeTree `*_local`
# tables ON CLUSTER and Distributed tables over them (viewing/ddl.py, "Cluster mode").
CLICKHOUSE_CLUSTER = env("CLICKHOUSE_CLUSTER")
# Settings sent with every query. Inserts are synchronous unless a caller asks otherwise
# (chdb's session default is async_insert=1).
CLICKHOUSE_QUERY_SETTINGS = {
    "async_insert": 0,
    # Room for the id list of a 10,000-event de-duplication look-up.
    "max_query_size": 16 * 1024 * 1024,
    "max_execution_time": env_int("CLICKHOUSE_QUERY_TIMEOUT", 30),
}
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
        "PORT": env_int("CLICKHOUSE_PORT", 9000),
        "NAME": CLICKHOUSE_DATABASE,
        "USER": env("CLICKHOUSE_USER", "default"),
        "PASSWORD": env("CLICKHOUSE_PASSWORD", ""),
        "OPTIONS": {
            "settings": CLICKHOUSE_QUERY_SETTINGS,
            "connect_timeout": env_int("CLICKHOUSE_CONNECT_TIMEOUT", 5),
            "send_receive_timeout": env_int("CLICKHOUSE_QUERY_TIMEOUT", 30),
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
SILENCED_SYSTEM_CHECKS = ["admin.E128"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Viewing data -------------------------------------------------------------------------
RETENTION_DAYS = env_int("RETENTION_DAYS", 365)

# --- Kafka --------------------------------------------------------------------------------
KAFKA_BOOTSTRAP_SERVERS = env("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
KAFKA_TOPICS = [t.strip() for t in env("KAFKA_TOPICS", "stream.start,stream.progress,stream.stop").split(",") if t.strip()]
KAFKA_CONSUMER_GROUP = env("KAFKA_CONSUMER_GROUP", "analytics-service")
KAFKA_DLQ_TOPIC = env("KAFKA_DLQ_TOPIC", "stream.dlq")
ENABLE_KAFKA = env_bool("ENABLE_KAFKA", True)
# Tansu (the test broker) holds a JoinGroup until session_timeout/2: a short session keeps the
# first poll of a new group at a few seconds instead of ~23 s with kafka-python's default.
KAFKA_SESSION_TIMEOUT_MS = env_int("KAFKA_SESSION_TIMEOUT_MS", 10000)
KAFKA_HEARTBEAT_INTERVAL_MS = env_int("KAFKA_HEARTBEAT_INTERVAL_MS", 3000)
KAFKA_MAX_POLL_INTERVAL_MS = env_int("KAFKA_MAX_POLL_INTERVAL_MS", 300000)
KAFKA_BATCH_SIZE = env_int("KAFKA_BATCH_SIZE", 10000)
KAFKA_FLUSH_INTERVAL = env_float("KAFKA_FLUSH_INTERVAL", 1.0)
# Stop (instead of dead-lettering the whole topic) when this many messages in a row are invalid.
KAFKA_POISON_LIMIT = env_int("KAFKA_POISON_LIMIT", 1000)
# Longest wait between attempts to store a batch while ClickHouse is unavailable (seconds).
KAFKA_RETRY_BACKOFF_MAX = env_float("KAFKA_RETRY_BACKOFF_MAX", 30.0)
# How long the consumer tries to reach the brokers at start before it reports them missing.
KAFKA_BOOTSTRAP_TIMEOUT_MS = env_int("KAFKA_BOOTSTRAP_TIMEOUT_MS", 10000)

# --- HTTP API -----------------------------------------------------------------------------
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024  # bodies over 10 MiB get 413
# Single events are stored through a group-commit buffer (viewing/ingest_buffer.py): under
# load a flush starts at most every INGEST_FLUSH_INTERVAL seconds, or at once when
# INGEST_FLUSH_EVENTS are waiting; when idle, at once.
INGEST_FLUSH_INTERVAL = env_float("INGEST_FLUSH_INTERVAL", 0.05)
INGEST_FLUSH_EVENTS = env_int("INGEST_FLUSH_EVENTS", 1000)
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
API_THROTTLE_RATES = {
    scope: None if rate.lower() == "none" else rate
    for scope, rate in (
        ("ingest", env("API_THROTTLE_INGEST", "6000/min")),
        ("read", env("API_THROTTLE_READ", "1200/min")),
    )
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Viewing analytics API",
    "DESCRIPTION": "Viewing events in, popularity, user stats, trends and peak hours out.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
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

LOG_FORMAT = env("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "analytics_site.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "stream": sys.stderr}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    # kafka-python logs every connection and join at INFO; the consumer loop logs what matters.
    "loggers": {
        "clickhouse_driver": {"level": "WARNING"},
        # kafka-python logs every failed connection attempt as an ERROR; the consumer logs one
        # clear line per attempt itself (viewing.kafka), so the client's own lines are opt-in.
        "kafka": {"level": env("KAFKA_CLIENT_LOG_LEVEL", "CRITICAL")},
    },
}
