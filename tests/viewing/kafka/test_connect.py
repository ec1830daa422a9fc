"""The consumer's start-up checks: the ClickHouse schema (on the test engine) and a broker."""

import logging
import socket

import pytest

from tests.conftest import query
from tests.kafka_broker import consumer_config
from viewing.kafka.config import ConsumerConfig
from viewing.kafka.connect import check_clickhouse, open_consumer
from viewing.kafka.errors import ConsumerError


class NoHooks:
    def on_revoked(self, revoked):
        return None

    def on_committed(self, offsets):
        pass

    def on_assigned(self, assigned):
        pass

    def on_lost(self, lost):
        pass


def test_the_schema_check_passes_on_a_migrated_database_and_says_to_migrate_without_it(ch):
    check_clickhouse("clickhouse")
    query("RENAME TABLE event_ids TO event_ids_away")
    try:
        with pytest.raises(ConsumerError, match="schema is missing: run `python manage.py migrate` first"):
            check_clickhouse("clickhouse")
    finally:
        query("RENAME TABLE event_ids_away TO event_ids")


def test_without_a_broker_the_consumer_is_not_opened_and_the_error_names_the_address():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nobody = f"127.0.0.1:{s.getsockname()[1]}"  # nothing listens once the socket is closed
    config = ConsumerConfig(bootstrap_servers=nobody, topics=["t"], group_id="g", dlq_topic="d",
                            bootstrap_timeout_ms=300)
    with pytest.raises(ConsumerError, match=f"Kafka is not reachable at {nobody}"):
        open_consumer(config, NoHooks())


@pytest.mark.kafka
def test_topics_that_do_not_exist_yet_are_named_and_subscribed_to(kafka_bootstrap, caplog):
    from tests.kafka_broker import Kafka

    kafka = Kafka(kafka_bootstrap)  # its topics are not created
    config = consumer_config(kafka)
    with caplog.at_level(logging.WARNING, logger="viewing.kafka.connect"):
        consumer = open_consumer(config, NoHooks())
    try:
        assert consumer.subscription() == set(kafka.topics)
        assert "do not exist yet" in caplog.text and kafka.topics[0] in caplog.text
    finally:
        consumer.close(autocommit=False)
        kafka.close()
