"""The offset ledger of one consumer: per partition, the first offset not yet stored (for
lag) and the stored offsets whose commit failed (retried with the next commit); and the
commit itself, which only ever covers stored rows."""

import logging
from collections.abc import Callable, Iterable, Mapping

from kafka import KafkaConsumer, TopicPartition
from kafka import errors as kafka_errors
from kafka.structs import OffsetAndMetadata

log = logging.getLogger(__name__)

Partition = tuple[str, int]  # (topic, partition)


def partition_name(topic: str, partition: int) -> str:
    """How a partition is named in logs, stats and /ready: `topic[partition]`."""
    return f"{topic}[{partition}]"


class OffsetLedger:
    """Offsets here are always "next to read" (last covered + 1), as Kafka commits them."""

    def __init__(self) -> None:
        self.stored_next: dict[Partition, int] = {}
        self.uncommitted: dict[Partition, int] = {}

    def seen(self, topic: str, partition: int, first_offset: int) -> None:
        """The first offset this run reads of a partition is where its unstored part begins
        (lag counts from there until something is stored)."""
        self.stored_next.setdefault((topic, partition), first_offset)

    def stored(self, offsets: Mapping[Partition, int]) -> None:
        self.stored_next.update(offsets)

    def to_commit(self, offsets: Mapping[Partition, int]) -> dict[Partition, int]:
        """These offsets and any earlier ones whose commit failed."""
        return {**self.uncommitted, **offsets}

    def commit_failed(self, offsets: Mapping[Partition, int]) -> None:
        self.uncommitted = dict(offsets)

    def committed(self, offsets: Iterable[Partition]) -> None:
        for key in offsets:
            self.uncommitted.pop(key, None)

    def commit(self, consumer: KafkaConsumer, offsets: Mapping[Partition, int]) -> bool:
        """Commit stored rows' offsets (and earlier ones whose commit failed). A failed commit
        is logged, not fatal: the rows are stored, so a re-delivery of them is skipped by id;
        the next commit retries."""
        offsets = self.to_commit(offsets)
        try:
            consumer.commit(commit_map(offsets))
        except kafka_errors.KafkaError as e:
            self.commit_failed(offsets)
            log.warning("Committing offsets failed: %s; retried with the next batch (re-delivered "
                        "rows are skipped as duplicates).", e)
            return False
        self.committed(offsets)
        return True

    def keep_only(self, assigned: Iterable[TopicPartition]) -> None:
        """After an assignment: forget partitions this member no longer owns."""
        keep = {(tp.topic, tp.partition) for tp in assigned}
        self.stored_next = {k: v for k, v in self.stored_next.items() if k in keep}

    def lag(self, assignment: Iterable[TopicPartition],
            highwater: Callable[[TopicPartition], int | None]) -> dict[Partition, int]:
        """Messages per partition not yet stored: the high watermark of the last fetch
        (`highwater(tp)`) minus the next offset to store. Partitions this run has not read
        anything from are left out: their lag is not known here."""
        lag = {}
        for tp in assignment:
            high = highwater(tp)
            done = self.stored_next.get((tp.topic, tp.partition))
            if high is not None and done is not None:
                lag[(tp.topic, tp.partition)] = max(0, high - done)
        return lag


def commit_map(offsets: Mapping[Partition, int]) -> dict[TopicPartition, OffsetAndMetadata]:
    """kafka-python's form of {(topic, partition): offset}."""
    return {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}
