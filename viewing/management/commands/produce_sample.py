"""`produce_sample`: a few valid and a few invalid viewing messages to KAFKA_TOPICS
(`make produce-sample`), to watch the consumer store the valid ones and dead-letter the rest."""

import json
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from .kafka_broker import require_broker

ACTIONS = ("start", "progress", "stop")


def sample_messages(valid: int, now: datetime) -> list[tuple[str, bytes, str]]:
    """(topic, value, what) of `valid` messages of one viewing session, then one of each
    kind of invalid message."""
    topics = dict(zip(ACTIONS, settings.KAFKA_TOPICS, strict=False))
    user, movie, session = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    messages = []
    for i in range(valid):
        action = "start" if i == 0 else ("stop" if i == valid - 1 and valid > 1 else "progress")
        value = {
            "event_id": str(uuid.uuid4()), "user_id": str(user), "movie_id": str(movie),
            "session_id": str(session), "action": action, "position_seconds": 300 * i,
            "timestamp": (now - timedelta(minutes=5 * (valid - i))).isoformat(),
        }
        messages.append((topics.get(action, settings.KAFKA_TOPICS[0]), json.dumps(value).encode(), action))
    topic = settings.KAFKA_TOPICS[0]
    base = {"user_id": str(user), "movie_id": str(movie), "action": "start"}
    invalid = [
        ({**base, "user_id": "not-a-uuid"}, "a malformed user_id"),
        ({"movie_id": str(movie), "action": "start"}, "no user_id"),
        ({**base, "timestamp": (now + timedelta(hours=1)).isoformat()}, "a time an hour ahead"),
    ]
    messages += [(topic, json.dumps(value).encode(), what) for value, what in invalid]
    messages.append((topic, b"{not json", "not JSON"))
    return messages


class Command(BaseCommand):
    help = ("Sends a few valid and invalid viewing messages to KAFKA_TOPICS on KAFKA_BOOTSTRAP_SERVERS "
            "(the invalid ones end in KAFKA_DLQ_TOPIC).")

    def add_arguments(self, parser):
        parser.add_argument("--valid", type=int, default=5, help="valid messages, one session (5)")

    def handle(self, *args, valid, **options):
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        require_broker()
        if valid < 0:
            raise CommandError("--valid must be at least 0.")
        messages = sample_messages(valid, datetime.now(UTC))
        try:
            producer = KafkaProducer(bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS, acks="all",
                                     request_timeout_ms=10000, max_block_ms=10000)
        except KafkaError as e:
            raise CommandError(
                f"No Kafka broker answers at {settings.KAFKA_BOOTSTRAP_SERVERS} ({e}): start one "
                "with `make broker`, or set KAFKA_BOOTSTRAP_SERVERS."
            ) from None
        try:
            for topic, value, what in messages:
                meta = producer.send(topic, value=value).get(timeout=10)
                self.stdout.write(f"{meta.topic}[{meta.partition}]@{meta.offset}: {what}")
        except KafkaError as e:
            raise CommandError(f"Sending to {settings.KAFKA_BOOTSTRAP_SERVERS} failed: {e}") from None
        finally:
            producer.close(timeout=10)
        self.stdout.write(
            f"Sent {valid} valid and {len(messages) - valid} invalid messages to "
            f"{settings.KAFKA_BOOTSTRAP_SERVERS}; the invalid ones go to {settings.KAFKA_DLQ_TOPIC}."
        )
