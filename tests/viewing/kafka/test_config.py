"""ConsumerConfig: built from settings, overridden per run, refused when it cannot work."""

import pytest

from viewing.kafka.config import FETCH_PARTITION_BYTES, ConsumerConfig
from viewing.kafka.errors import ConfigurationError


def test_from_settings_reads_the_kafka_settings_and_overrides_win(settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = "kafka-1:9092,kafka-2:9092"
    settings.KAFKA_TOPICS = ["a.stream.start"]
    settings.KAFKA_CONSUMER_GROUP = "group-x"
    settings.KAFKA_DLQ_TOPIC = "a.dlq"
    settings.KAFKA_BATCH_SIZE = 700
    settings.KAFKA_POISON_LIMIT = 5
    config = ConsumerConfig.from_settings(flush_interval=2.5, batch_size=None)
    assert config.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert config.topics == ["a.stream.start"] and config.group_id == "group-x" and config.dlq_topic == "a.dlq"
    assert config.batch_size == 700  # None leaves the setting
    assert config.flush_interval == 2.5
    assert config.poison_limit == 5
    assert config.insert_timeout == settings.CLICKHOUSE_QUERY_SETTINGS["max_execution_time"]


def test_consumer_options_commit_by_hand_and_start_a_new_group_at_the_earliest_offset():
    options = ConsumerConfig(bootstrap_servers="b:9092", topics=("t",), group_id="g", dlq_topic="d",
                             batch_size=300, session_timeout_ms=6000).consumer_options()
    assert options["enable_auto_commit"] is False and options["auto_offset_reset"] == "earliest"
    assert options["group_id"] == "g" and options["max_poll_records"] == 300
    assert options["max_partition_fetch_bytes"] == FETCH_PARTITION_BYTES
    assert options["request_timeout_ms"] == 30000


def test_a_flush_that_could_outlast_the_poll_interval_is_refused():
    # 10,000 rows: an id look-up and the insert, 30 s each: 60 s, not below 60 s.
    with pytest.raises(ConfigurationError, match="KAFKA_MAX_POLL_INTERVAL_MS=60000") as caught:
        ConsumerConfig(bootstrap_servers="b", topics=["t"], group_id="g", dlq_topic="d",
                       batch_size=10000, insert_timeout=30, max_poll_interval_ms=60000)
    assert caught.value.fatal  # the server thread does not retry it


@pytest.mark.parametrize("change", [{"batch_size": 0}, {"flush_interval": 0}, {"poison_limit": 0}])
def test_sizes_below_one_are_refused(change):
    with pytest.raises(ConfigurationError):
        ConsumerConfig(bootstrap_servers="b", topics=["t"], group_id="g", dlq_topic="d", **change)


def test_the_consumer_process_tunes_the_garbage_collector_and_says_what_it_had():
    import gc

    from viewing.kafka.config import CONSUMER_GC_THRESHOLDS, consumer_gc_tune

    before = gc.get_threshold()
    try:
        assert consumer_gc_tune() == before
        assert gc.get_threshold() == CONSUMER_GC_THRESHOLDS
    finally:
        gc.set_threshold(*before)
