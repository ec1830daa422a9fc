"""Dead letters: the producer that sends messages which cannot become events to the
dead-letter topic (original bytes, the error and the source in headers), and the policy that
tells a few bad messages from a misconfigured producer (arroyo's DlqLimit is the model)."""

import json
import logging
from collections.abc import Iterable

from kafka import KafkaProducer

from .batcher import DeadLetter
from .errors import ConsumerError, PoisonFlood

log = logging.getLogger(__name__)

# How long a batch's dead letters may take to be acknowledged by the broker.
ACK_TIMEOUT_S = 10


def dead_letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """The headers that say why and from where: `dlq.error` is JSON, field → messages, as the
    HTTP API reports errors."""
    return [
        ("dlq.error", json.dumps(letter.error, ensure_ascii=False).encode()),
        ("dlq.topic", letter.topic.encode()),
        ("dlq.partition", str(letter.partition).encode()),
        ("dlq.offset", str(letter.offset).encode()),
        ("dlq.timestamp", str(letter.timestamp_ms).encode()),
    ]


class DeadLetterProducer:
    """Sends dead letters and waits for the broker's acknowledgement (acks=all) before the
    loop may commit the offsets they cover. Opened on first use."""

    def __init__(self, *, bootstrap_servers: str, topic: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._producer: KafkaProducer | None = None

    def send(self, letters: Iterable[DeadLetter]) -> int:
        """Send the letters not yet acknowledged (a retried flush skips the others); returns
        how many were sent. Raises ConsumerError unless every one is acknowledged."""
        pending = [letter for letter in letters if not letter.sent]
        if not pending:
            return 0
        if self._producer is None:
            self._producer = KafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all",
                                           linger_ms=5, max_block_ms=ACK_TIMEOUT_S * 1000)
        futures = [
            (letter, self._producer.send(self.topic, key=letter.key, value=letter.value,
                                         headers=dead_letter_headers(letter)))
            for letter in pending
        ]
        self._producer.flush(timeout=ACK_TIMEOUT_S)
        failed = None
        for letter, future in futures:
            if future.is_done and future.succeeded():
                letter.sent = True
            else:
                failed = future.exception or f"no acknowledgement within {ACK_TIMEOUT_S} s"
        if failed is not None:
            raise ConsumerError(f"Dead-letter topic {self.topic} did not accept every message: {failed}")
        return len(pending)

    def close(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=ACK_TIMEOUT_S)
            except Exception as e:
                log.warning("Closing the dead-letter producer failed: %s", e)
            self._producer = None


class PoisonPolicy:
    """Counts invalid messages in a row. At `limit` the producer looks misconfigured: the loop
    dead-letters and commits that many, then stops (PoisonFlood) instead of dead-lettering
    the whole topic. One valid message resets the count."""

    def __init__(self, *, limit: int, dlq_topic: str) -> None:
        self.limit = limit
        self.dlq_topic = dlq_topic
        self.streak = 0

    def invalid(self) -> None:
        self.streak += 1

    def valid(self) -> None:
        self.streak = 0

    @property
    def exceeded(self) -> bool:
        return self.streak >= self.limit

    def error(self) -> PoisonFlood:
        return PoisonFlood(
            f"The last {self.streak} messages were all invalid (limit KAFKA_POISON_LIMIT="
            f"{self.limit}): the producer looks misconfigured. They are in {self.dlq_topic}; "
            f"stopping instead of dead-lettering the whole topic. Fix the producer and restart."
        )
