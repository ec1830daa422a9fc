"""The consumer's start-up: ClickHouse must hold the schema and a broker must answer, or a
ConsumerError says which is missing; then the KafkaConsumer joins the group."""

import logging

from django.db import connections
from kafka import KafkaConsumer
from kafka import errors as kafka_errors

from .config import ConsumerConfig
from .errors import ConsumerError
from .rebalance import RebalanceHooks, RebalanceListener

log = logging.getLogger(__name__)

SCHEMA_CHECK = (
    "SELECT count() FROM system.tables WHERE database = currentDatabase() "
    "AND name IN ('viewing_events', 'event_ids')"
)


def check_clickhouse(using: str) -> None:
    """Raise ConsumerError unless the raw table and the id table exist."""
    try:
        with connections[using].cursor() as cursor:
            cursor.execute(SCHEMA_CHECK)
            (found,), = cursor.fetchall()
    except Exception as e:
        if "UNKNOWN_DATABASE" not in str(e):  # migrate creates the database with the schema
            raise ConsumerError(f"ClickHouse is not available: {e}") from e
        found = 0
    if found != 2:
        raise ConsumerError("The ClickHouse schema is missing: run `python manage.py migrate` first.")


def open_consumer(config: ConsumerConfig, hooks: RebalanceHooks) -> KafkaConsumer:
    """A KafkaConsumer subscribed to the topics, its rebalances calling `hooks`; raises
    ConsumerError when no broker answers within KAFKA_BOOTSTRAP_TIMEOUT_MS."""
    try:
        consumer = KafkaConsumer(**config.consumer_options())
        missing = sorted(set(config.topics) - consumer.topics())
    except kafka_errors.KafkaError as e:
        raise ConsumerError(f"Kafka is not reachable at {config.bootstrap_servers}: {e}") from e
    if missing:
        log.warning("Topics %s do not exist yet on %s; they are read once they are created.",
                    ", ".join(missing), config.bootstrap_servers)
    consumer.subscribe(config.topics, listener=RebalanceListener(hooks, consumer, using=config.using))
    return consumer
