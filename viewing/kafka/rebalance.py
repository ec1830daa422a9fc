"""The rebalance listener: before partitions go, the loop's buffered batch is stored and its
offsets committed; after an assignment, the loop learns what it owns.

kafka-python 3 runs listeners on its IO thread, where a blocking consumer call raises; the
async variant can await the commit there. The loop's thread is blocked inside poll() or
close() meanwhile, so the batch is not shared. A store made here opens a database connection
of the IO thread (Django's connections are per thread); it is closed once the hook is done.
"""

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Protocol

from django.db import connections
from kafka import AsyncConsumerRebalanceListener, KafkaConsumer, TopicPartition

from .offsets import Partition, commit_map

log = logging.getLogger(__name__)


class RebalanceHooks(Protocol):
    """What the loop does when the group changes (StreamConsumer implements it)."""

    def on_revoked(self, revoked: set[TopicPartition]) -> Mapping[Partition, int] | None:
        """Partitions are about to go: store what is buffered; the offsets to commit."""

    def on_committed(self, offsets: Mapping[Partition, int]) -> None:
        """Those offsets are committed."""

    def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """The partitions this member owns now."""

    def on_lost(self, lost: set[TopicPartition]) -> None:
        """Evicted: the partitions belong to someone else already; nothing can be committed."""


@contextlib.contextmanager
def closing_new_connection(alias: str) -> Iterator[None]:
    """Close the connection to `alias` afterwards if it was opened inside the block: the IO
    thread never uses it again, and an open connection would outlive the consumer."""
    connection = connections[alias]
    opened_here = connection.connection is None
    try:
        yield
    finally:
        if opened_here and connection.connection is not None:
            connection.close()


class RebalanceListener(AsyncConsumerRebalanceListener):
    """Calls the loop's public hooks; commits what on_revoked stored."""

    def __init__(self, hooks: RebalanceHooks, consumer: KafkaConsumer, *, using: str) -> None:
        self.hooks = hooks
        self.consumer = consumer
        self.using = using

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        with closing_new_connection(self.using):
            offsets = self.hooks.on_revoked(revoked)
        if not offsets:
            return
        try:
            await self.consumer.commit_async(commit_map(offsets))
        except Exception as e:  # stored but not committed: the next owner re-reads, ids de-duplicate
            log.warning("Commit before rebalance failed: %s; the next owner re-reads those rows "
                        "and skips them as duplicates.", e)
            return
        self.hooks.on_committed(offsets)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.hooks.on_assigned(assigned)

    async def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        self.hooks.on_lost(lost)
