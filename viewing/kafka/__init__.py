"""Kafka ingestion: a pure processor, a batcher and the consumer loop that owns the I/O."""
