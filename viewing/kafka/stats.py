"""Counters of one consumer loop and the rate it reads at: what the command prints at the
end, and what /ready and /metrics show of the server's consumer thread."""

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from .offsets import partition_name

log = logging.getLogger("viewing.kafka.loop")  # the flush line belongs to the loop's log

# Messages per second are averaged over this many seconds (a minute, like a Prometheus rate()).
RATE_WINDOW_S = 60.0


class RateMeter:
    """Messages per second over the last `window` seconds, from a running total. Samples are
    kept at most one per second, so memory stays bounded; the rate falls to 0 when idle."""

    def __init__(self, *, window: float = RATE_WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self.total = 0
        self._samples: deque[tuple[float, int]] = deque([(clock(), 0)])

    def add(self, count: int) -> None:
        self.total += count
        now = self.clock()
        if len(self._samples) == 1 or now - self._samples[-1][0] >= 1.0:
            self._samples.append((now, self.total))
        else:
            self._samples[-1] = (self._samples[-1][0], self.total)
        self._trim(now)

    def _trim(self, now: float) -> None:
        # Keep one sample at or before the window's start: the baseline of the rate.
        while len(self._samples) > 1 and self._samples[1][0] <= now - self.window:
            self._samples.popleft()

    def rate(self) -> float:
        """Safe from another thread: reads a copy (list() of a deque holds the GIL)."""
        now = self.clock()
        samples = list(self._samples)
        total = self.total
        since, base = samples[0]
        for at, count in samples:
            if at > now - self.window:
                break
            since, base = at, count
        if total == base:
            return 0.0
        return (total - base) / max(now - since, 1.0)


class ConsumerStats:
    """Counters of one loop. Written by the loop's thread (and kafka-python's IO thread during
    a rebalance, while the loop's thread waits in poll()); readers take snapshot() — plain
    attribute reads and dict copies, atomic enough under the GIL."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.state = "starting"
        self.consumed = 0
        self.stored = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self.flushes = 0
        self.failed_flushes = 0
        self.buffered = 0
        self.paused = False
        self.assignment: list[str] = []
        self.lag: dict[str, int] = {}
        self.last_flush: dict[str, Any] | None = None
        self.last_error: str | None = None
        self.meter = RateMeter()

    def read(self, count: int, buffered: int) -> None:
        """`count` more messages read; `buffered` wait to be stored."""
        self.consumed += count
        self.buffered = buffered
        self.meter.add(count)

    def flushed(self, *, rows: int, new: int, dead_letters: int, seconds: float, buffered: int,
                lag: Mapping[tuple[str, int], int]) -> None:
        self.flushes += 1
        self.stored += new
        self.duplicates += rows - new
        self.dead_lettered += dead_letters
        self.buffered = buffered
        self.set_lag(lag)
        self.state = "running"
        now = time.time()
        self.last_flush = {
            "at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
            "timestamp": now,
            "rows": rows,
            "stored": new,
            "dead_lettered": dead_letters,
            "seconds": round(seconds, 3),
        }
        total_lag = sum(self.lag.values())
        log.info("Flushed %d messages: %d stored, %d duplicates, %d dead-lettered in %.3f s; lag %d.",
                 rows + dead_letters, new, rows - new, dead_letters, seconds, total_lag,
                 extra={"rows": rows, "stored": new, "duplicates": rows - new, "dead_lettered": dead_letters,
                        "seconds": round(seconds, 3), "lag": total_lag})

    def flush_failed(self, error: str, lag: Mapping[tuple[str, int], int]) -> None:
        self.failed_flushes += 1
        self.last_error = error
        self.state = "retrying"
        self.set_lag(lag)

    def set_lag(self, lag: Mapping[tuple[str, int], int]) -> None:
        """Lag per (topic, partition), kept by partition name (`topic[n]`)."""
        self.lag = {partition_name(topic, partition): n for (topic, partition), n in sorted(lag.items())}

    def snapshot(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "state": self.state,
            "consumed": self.consumed,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "dead_lettered": self.dead_lettered,
            "flushes": self.flushes,
            "failed_flushes": self.failed_flushes,
            "buffered": self.buffered,
            "paused": self.paused,
            "assignment": list(self.assignment),
            "lag": dict(self.lag),
            "total_lag": sum(self.lag.values()),
            "messages_per_second": round(self.meter.rate(), 1),
            "last_flush": dict(self.last_flush) if self.last_flush else None,
            "last_error": self.last_error,
        }
