"""The batcher: buffers processed rows and dead letters with the offsets they cover, and says
when a batch is due (size, bytes or age). Pure bookkeeping; the loop does the I/O."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DeadLetter:
    """A record that could not become an event, as it goes to the dead-letter topic."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    error: dict
    sent: bool = False  # acknowledged by the dead-letter topic (a retried flush skips it)


@dataclass
class Batch:
    """What one flush stores: rows, dead letters, and per (topic, partition) the offset to
    commit (last offset covered + 1)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    started: float | None = None  # monotonic time of the first message
    bytes: int = 0  # of the message values it holds

    def __len__(self) -> int:
        return len(self.rows) + len(self.dead_letters)


class Batcher:
    """Collects messages until `size` of them, `max_bytes` of their values (so a batch of large
    messages stays bounded in memory) or `interval` seconds since the first one."""

    def __init__(self, *, size: int, interval: float, max_bytes: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if size < 1 or interval <= 0 or (max_bytes is not None and max_bytes < 1):
            raise ValueError("batch size and bytes must be >= 1 and flush interval > 0")
        self.size = size
        self.max_bytes = max_bytes
        self.interval = interval
        self.clock = clock
        self.batch = Batch()

    def _note(self, topic: str, partition: int, offset: int, size: int) -> None:
        if self.batch.started is None:
            self.batch.started = self.clock()
        self.batch.bytes += size
        key = (topic, partition)
        # Offsets of one partition arrive in order; max() keeps a re-fetch after a seek safe.
        self.batch.offsets[key] = max(self.batch.offsets.get(key, 0), offset + 1)

    def add(self, row: dict[str, Any], *, topic: str, partition: int, offset: int, size: int = 0) -> None:
        """`size`: the bytes of the message's value."""
        self.batch.rows.append(row)
        self._note(topic, partition, offset, size)

    def add_rows(self, rows: list[dict[str, Any]], *, topic: str, partition: int, offset: int, size: int = 0) -> None:
        """Rows of consecutive records of one partition, `offset` the last one's; `size`: the
        bytes of their values. (The loop's path: one call per partition and poll.)"""
        self.batch.rows.extend(rows)
        self._note(topic, partition, offset, size)

    def add_dead_letter(self, letter: DeadLetter) -> None:
        self.batch.dead_letters.append(letter)
        self._note(letter.topic, letter.partition, letter.offset, len(letter.value or b""))

    def __len__(self) -> int:
        return len(self.batch)

    @property
    def full(self) -> bool:
        return len(self.batch) >= self.size or (self.max_bytes is not None and self.batch.bytes >= self.max_bytes)

    def room(self) -> int:
        """How many more messages fit before the batch is full (a poll may bring more bytes
        than the room left: the byte bound is passed by one poll at most)."""
        return 0 if self.full else self.size - len(self.batch)

    def due(self) -> bool:
        """Whether the batch should be flushed now (full, or old enough)."""
        if not len(self.batch):
            return False
        return self.full or self.clock() - self.batch.started >= self.interval

    def time_left(self) -> float | None:
        """Seconds until the age trigger fires (None when empty)."""
        if self.batch.started is None:
            return None
        return max(0.0, self.interval - (self.clock() - self.batch.started))

    def take(self) -> Batch:
        """The current batch, leaving an empty one."""
        batch, self.batch = self.batch, Batch()
        return batch

    def clear(self) -> None:
        """Forget the buffered batch: after a rebalance its partitions are read again from
        the committed offsets (by whichever consumer owns them now)."""
        self.batch = Batch()
