"""Shared fixtures: a real ClickHouse (embedded by default, see tests/engine.py), emptied
before each test that asks for it."""

from datetime import UTC, datetime

import pytest
from django.db import connections

from tests.engine import EMBEDDED
from viewing import clock, ddl, services

# The broker fixtures (kafka_bootstrap, kafka) for the Kafka tests.
pytest_plugins = ["tests.kafka_broker"]


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="embedded-engine test; the suite runs on a server")
    for item in items:
        if "ch" in getattr(item, "fixturenames", ()):
            # Both databases: the test DB of ClickHouse is created (and migrated) once.
            item.add_marker(pytest.mark.django_db(databases=["default", "clickhouse"]))
        if "embedded" in item.keywords and not EMBEDDED:
            item.add_marker(skip)


@pytest.fixture
def ch(db):
    """The ClickHouse connection, every data table truncated (views keep feeding them)."""
    connection = connections["clickhouse"]
    with connection.cursor() as cursor:
        for table in ddl.DATA_TABLES:
            cursor.execute(f"TRUNCATE TABLE {table}")
    # An insert a previous test left half-written belongs to the data just emptied.
    services.unfinished_inserts().clear()
    return connection


@pytest.fixture
def api_key(db):
    """A fresh API key with both scopes (ingest and read), as a client of the service has."""
    from analytics_site.access.models import ApiKey

    return ApiKey.objects.create_key(name="tests", can_ingest=True, can_read=True)[1]


@pytest.fixture
def client(api_key):
    """pytest-django's test client, sending an ingest+read key with every request as every API
    client must (DEBUG is off in `make test`). Tests of requests without a key use Client().
    Requests meet the single-event short path first, as under gunicorn (tests/shortcut_client.py)."""
    from tests.shortcut_client import ShortcutClient

    return ShortcutClient(HTTP_AUTHORIZATION=f"Api-Key {api_key}")


@pytest.fixture
def frozen_now():
    """The service clock frozen at 23:58:00 UTC of today's real date (real, because the
    tables' TTL counts from the real time): windows and "5 minutes ahead" are then exact, and
    the next UTC midnight is 2 minutes away."""
    moment = datetime.now(UTC).replace(hour=23, minute=58, second=0, microsecond=0)
    with clock.frozen(moment):
        yield moment


def query(sql, params=None):
    """Rows of a query on the ClickHouse test database."""
    with connections["clickhouse"].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
