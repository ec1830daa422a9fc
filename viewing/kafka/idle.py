"""When `--exit-on-idle` may stop the loop: nothing new for that long, nothing buffered, and
(before the first assignment) extra time for the group to form."""

import time
from collections.abc import Callable


class IdleClock:
    """Tracks the last activity (a read, an assignment, a revocation) of one loop."""

    def __init__(self, *, join_grace_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        # Joining a group takes a while (Tansu: session_timeout/2; Kafka: the initial
        # rebalance delay), so the idle clock gets that much more before the first assignment.
        self.join_grace_s = join_grace_s
        self.clock = clock
        self.joined = False
        self.last = clock()

    def touch(self) -> None:
        self.last = self.clock()

    def assigned(self) -> None:
        self.joined = True
        self.touch()

    def revoked(self) -> None:
        # A rebalance is under way: not idle, and rejoining may take as long as a first join.
        self.joined = False
        self.touch()

    def idle_for(self, *, buffered: int) -> float:
        if buffered:
            return 0.0  # not idle until everything is stored and committed
        return self.clock() - self.last

    def expired(self, limit: float, *, buffered: int) -> bool:
        """Whether `limit` seconds of idleness have passed (plus the join grace before the
        first assignment)."""
        return self.idle_for(buffered=buffered) >= (limit if self.joined else limit + self.join_grace_s)
