"""`read_dlq`: the dead letters in KAFKA_DLQ_TOPIC, one line each — where the message came
from, why it was refused, and its original bytes (docs/kafka.md, Lag and dead letters)."""

import json
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from .kafka_broker import require_broker


def describe(record) -> str:
    headers = {key: value.decode(errors="replace") for key, value in (record.headers or [])}
    source = f"{headers.get('dlq.topic', '?')}[{headers.get('dlq.partition', '?')}]@{headers.get('dlq.offset', '?')}"
    try:
        error = json.dumps(json.loads(headers.get("dlq.error", "null")), ensure_ascii=False)
    except ValueError:
        error = headers.get("dlq.error", "?")
    value = (record.value or b"").decode(errors="replace")
    return f"{source} {error}: {value}"


class Command(BaseCommand):
    help = "Prints the dead letters of KAFKA_DLQ_TOPIC, oldest first, without joining a consumer group."

    def add_arguments(self, parser):
        parser.add_argument("--idle", type=float, default=2.0, metavar="SECONDS",
                            help="stop once nothing new came for this long (2)")

    def handle(self, *args, idle, **options):
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        require_broker()
        topic = settings.KAFKA_DLQ_TOPIC
        try:
            consumer = KafkaConsumer(bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
                                     enable_auto_commit=False, request_timeout_ms=10000)
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        except KafkaError as e:
            raise CommandError(
                f"No Kafka broker answers at {settings.KAFKA_BOOTSTRAP_SERVERS} ({e}): start one "
                "with `make broker`, or set KAFKA_BOOTSTRAP_SERVERS."
            ) from None
        count = 0
        try:
            if partitions:
                consumer.assign(partitions)
                consumer.seek_to_beginning(*partitions)
                last = time.monotonic()
                while time.monotonic() - last < idle:
                    batches = consumer.poll(timeout_ms=200)
                    for records in batches.values():
                        for record in records:
                            self.stdout.write(describe(record))
                            count += 1
                    if batches:
                        last = time.monotonic()
        finally:
            consumer.close(autocommit=False)
        self.stdout.write(f"{count} dead letter{'' if count == 1 else 's'} in {topic}.")
