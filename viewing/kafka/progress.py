"""How far a consumer group has read: for every partition of its topics, the group's committed
offset against the partition's end. What `--exit-on-idle` checks before it says "done".

The end is the high watermark of a fetch, not ListOffsets: Tansu 0.6 answers ListOffsets
(KafkaConsumer.end_offsets) with 1 for a partition holding 5 or 17 messages in one batch
(measured; tests/kafka_broker.py), while its fetch responses carry the right watermark.
The committed offsets come from an admin client of its own, never from the group member:
blocking OffsetFetch calls on the member while it joins held its join up on Tansu (its
requests queue behind a JoinGroup the broker holds for half the session timeout).
"""

import time
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from .config import ConsumerConfig
from .offsets import partition_name

# How long one check may wait for the fetch responses that carry the watermarks.
WATERMARK_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Unread:
    """A partition the group has not read to its end."""

    topic: str
    partition: int
    committed: int | None  # None: nothing committed yet
    end: int

    def __str__(self) -> str:
        done = "nothing" if self.committed is None else f"up to offset {self.committed}"
        return f"{partition_name(self.topic, self.partition)} (committed {done} of {self.end})"


class GroupProgress:
    """Checks the group's progress with clients of its own: an admin client for the committed
    offsets and a probe consumer (no group: it only fetches, to learn the watermarks)."""

    def __init__(self, config: ConsumerConfig) -> None:
        self.config = config
        self._probe: KafkaConsumer | None = None
        self._admin: KafkaAdminClient | None = None

    def partitions(self) -> list[TopicPartition]:
        """Every partition of the topics that exist now."""
        probe = self._open()
        return sorted(TopicPartition(topic, p) for topic in self.config.topics
                      for p in probe.partitions_for_topic(topic) or ())

    def ends(self, partitions: list[TopicPartition], committed: dict[TopicPartition, int | None]) -> dict[TopicPartition, int]:
        """The high watermark of each partition, fetched from the group's committed offset (or
        the beginning); raises TimeoutError when the broker does not answer in time."""
        probe = self._open()
        probe.assign(partitions)
        for tp in partitions:
            if committed.get(tp) is None:
                probe.seek_to_beginning(tp)
            else:
                probe.seek(tp, committed[tp])
        deadline = time.monotonic() + WATERMARK_TIMEOUT_S
        while any(probe.highwater(tp) is None for tp in partitions):
            if time.monotonic() > deadline:
                missing = [partition_name(tp.topic, tp.partition) for tp in partitions if probe.highwater(tp) is None]
                raise TimeoutError(f"no fetch response for {', '.join(missing)} within {WATERMARK_TIMEOUT_S:.0f} s")
            probe.poll(timeout_ms=200, max_records=1)  # only the watermarks matter
        return {tp: probe.highwater(tp) for tp in partitions}

    def committed(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int | None]:
        """The group's committed offset of each partition (None: nothing committed)."""
        if self._admin is None:
            self._admin = KafkaAdminClient(bootstrap_servers=self.config.bootstrap_servers,
                                           request_timeout_ms=int(WATERMARK_TIMEOUT_S * 1000))
        group = self.config.group_id
        found = self._admin.list_group_offsets({group: partitions}).get(group, {})
        return {tp: found[tp].offset if tp in found and found[tp].offset >= 0 else None for tp in partitions}

    def unread(self) -> list[Unread]:
        """The partitions whose end is beyond the group's committed offset."""
        partitions = self.partitions()
        committed = self.committed(partitions)
        ends = self.ends(partitions, committed)
        return [Unread(tp.topic, tp.partition, committed[tp], ends[tp]) for tp in partitions
                if ends[tp] > (committed[tp] or 0)]

    def _open(self) -> KafkaConsumer:
        if self._probe is None:
            self._probe = KafkaConsumer(bootstrap_servers=self.config.bootstrap_servers, enable_auto_commit=False,
                                        group_id=None, max_partition_fetch_bytes=64 * 1024,
                                        bootstrap_timeout_ms=self.config.bootstrap_timeout_ms)
        return self._probe

    def close(self) -> None:
        if self._probe is not None:
            self._probe.close(autocommit=False)
            self._probe = None
        if self._admin is not None:
            self._admin.close()
            self._admin = None
