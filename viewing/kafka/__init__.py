"""Kafka ingestion, one job per module:

- processor: the pure message processor (bytes → event row or errors) and the processing step
- batcher: rows and dead letters buffered with the offsets they cover; size and age triggers
- loop: StreamConsumer, poll → process → flush (one insert) → commit, and the signals
- config: ConsumerConfig, from Django settings
- connect: the start-up checks (ClickHouse schema, a broker) and the KafkaConsumer
- offsets: the offset and lag ledger, and the commit
- dlq: the dead-letter producer and the poison policy
- rebalance: the rebalance listener calling the loop's public hooks
- stats: counters and messages per second
- idle: when --exit-on-idle may stop
- backoff: the bounded, doubling retry delay
- errors: ConsumerError and the fatal ones
- thread: the loop as a background thread of the API server, and its health
"""
