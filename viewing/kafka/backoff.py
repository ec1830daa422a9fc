"""A doubling, bounded retry delay: the loop's between attempts to store a batch, the server
thread's between attempts to start the loop."""

import time
from collections.abc import Callable


class Backoff:
    """`initial` seconds after the first failure, doubling up to `maximum`; reset() after a
    success. `retry_at` is when the next attempt is due (None: nothing to retry)."""

    def __init__(self, *, initial: float, maximum: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.initial = initial
        self.maximum = maximum
        self.clock = clock
        self.failures = 0
        self.retry_at: float | None = None

    def failed(self) -> float:
        """One more failure: the delay before the next attempt (also set as retry_at)."""
        self.failures += 1
        delay = min(self.maximum, self.initial * 2 ** (self.failures - 1))
        self.retry_at = self.clock() + delay
        return delay

    def reset(self) -> None:
        self.failures = 0
        self.retry_at = None

    def due(self) -> bool:
        return self.retry_at is not None and self.clock() >= self.retry_at
