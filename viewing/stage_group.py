"""Bodies of concurrent batch requests staged by one engine query (engine_stage.stage_bodies).

Why: the engine plans every query anew, and planning the staging query costs ~18 ms of CPU
whatever its rows, about as much as reading and checking 10,000 events; one query for the
bodies of several requests pays it once, and its UNION ALL runs on both cores. Measured in one
process, 4 bodies of 10,000 staged and checked: 122 ms of CPU and 99 ms wall in one query,
against 175 ms and 96 ms for a query each, side by side (docs/performance.md).

How, as the group commit of the inserts (viewing/batch_commit.py): a request whose body is
ready joins the queue; the first one queued, when no staging runs, leads. It waits (at most
`arrival_wait`) for the requests counted as arriving — being read, entered with arrival() —
then stages every queued body (at most `max_bodies`) in one query and hands each request its
own result. Bodies queued while a staging runs are staged together by the next leader. A lone
request finds nothing arriving and is staged at once. Requests a pool sends together do not
all count as arriving when the first is ready (their bodies reach the server a few
milliseconds apart), so a leader also waits (at most `expect_wait`) until as many are queued
as the larger of the last two stagings held: a pool of four is staged in one query instead
of one body, then three, and a client sending one batch after the other waits only on its
first two batches after such a pool.

No thread of its own: every queued request has its request thread waiting on it. A staging
that raises gives every request of it the error.
"""

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

# Bodies staged together at most (~2 MiB each, at most 10,000 events).
MAX_BODIES = 8
# How long a leader waits at most for requests still being read: a producer's pool sends its
# batches together, and a 10,000-event body is read in a few milliseconds.
ARRIVAL_WAIT = 0.05
# How long a leader waits at most for as many bodies as the last stagings held (measured with
# 4 connections: their requests begin within ~20 ms of each other).
EXPECT_WAIT = 0.02


class _Queued:
    __slots__ = ("item", "done", "result", "error")

    def __init__(self, item: Any) -> None:
        self.item = item
        self.done = False
        self.result = None
        self.error: BaseException | None = None


class StagingGroup:
    """Runs `stage_many(items) -> results` (one result an item, in order) for the items queued
    together."""

    def __init__(self, stage_many: Callable[[Sequence[Any]], list], *, max_bodies: int = MAX_BODIES,
                 arrival_wait: float = ARRIVAL_WAIT, expect_wait: float = EXPECT_WAIT) -> None:
        self.stage_many = stage_many
        self.max_bodies = max_bodies
        self.arrival_wait = arrival_wait
        self.expect_wait = expect_wait
        self._last = (1, 1)  # bodies of the last two stagings
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queued: list[_Queued] = []
        self._arriving = 0  # requests entered with arrival() that have not queued (nor left)
        self._staging = False
        self._mine = threading.local()  # whether this thread is counted as arriving
        self.stagings = 0  # queries run, for tests

    @contextmanager
    def arrival(self) -> Iterator[None]:
        """A request on its way (its body being read): a leader waits for it to queue."""
        with self._lock:
            self._arriving += 1
        self._mine.arriving = True
        try:
            yield
        finally:
            if self._mine.arriving:  # left without staging (another path, an error)
                self._mine.arriving = False
                with self._lock:
                    self._arriving -= 1
                    self._changed.notify_all()

    def stage(self, item: Any) -> Any:
        """The result of staging `item` with the others queued with it."""
        mine = _Queued(item)
        with self._lock:
            if getattr(self._mine, "arriving", False):
                self._mine.arriving = False
                self._arriving -= 1
            self._queued.append(mine)
            self._changed.notify_all()  # a leader waiting for arrivals looks again
            started = None
            while not mine.done:
                if not self._staging and self._queued[0] is mine:
                    now = time.monotonic()
                    started = started or now
                    wait = 0.0
                    if len(self._queued) < self.max_bodies:
                        if self._arriving:
                            wait = started + self.arrival_wait - now
                        elif len(self._queued) < max(self._last):
                            wait = started + self.expect_wait - now
                    if wait > 0:
                        self._changed.wait(wait)
                        continue
                    self._lead()
                else:
                    self._changed.wait()
        if mine.error is not None:
            raise mine.error
        return mine.result

    def _lead(self) -> None:
        # Called with the lock held; released while the engine stages.
        group = self._queued[:self.max_bodies]
        del self._queued[:self.max_bodies]
        self._last = (self._last[1], len(group))
        self._staging = True
        self._lock.release()
        results, error = None, None
        try:
            results = self.stage_many([queued.item for queued in group])
        except BaseException as e:  # every request of the group gets the error
            error = e
        finally:
            self._lock.acquire()
            for k, queued in enumerate(group):
                queued.done, queued.error = True, error
                queued.result = results[k] if results is not None else None
            self._staging = False
            self.stagings += 1
            self._changed.notify_all()
