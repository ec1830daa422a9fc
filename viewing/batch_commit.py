"""Group commit for HTTP batches: concurrent batch requests share one insert.

Why: every insert costs the engine a fixed amount of work whatever its size (a part in the raw
table and in each materialized view's table, the views' queries): measured here, a 10-row
insert ~70-115 ms and a 10,000-row one ~225 ms, against ~360 ms for 100,000 rows. A producer
with a connection pool keeps several batches in flight; one insert for each would spend most
of the engine's time on that fixed cost. Here a request whose turn comes while another insert
runs waits, and when that insert is done the first waiting request (the leader) stores the
events of every request waiting by then in one `events_store` call (up to `max_events`),
then wakes the others. Requests still being read and checked count as arriving: the leader
waits for them too (at most `arrival_wait`), since batches sent together by a producer's
connection pool arrive together. A lone request finds no insert running and nothing arriving
and is stored at once, so a client sending one batch after the other waits for nothing.

The guarantees of one request stay those of one insert: a request returns only after the
insert that holds its events has succeeded (so a 201 still means stored), and when that insert
fails every request in it gets the error and none is acknowledged. Each request's events were
checked before they joined (all or nothing per request; an invalid batch never waits here).
The insert of a group is one INSERT: the raw table takes it as one block, and the ids are
de-duplicated across the whole group as within one batch.

No thread of its own: every pending request has its request thread waiting on it.
"""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings

from .engine_stage import StagedBatch
from .engine_store import staged_store
from .services import events_store

# On the embedded engine the views of an insert run side by side instead of one after the
# other (what viewing/ingest_buffer.py asks for single events): the insert's wall time, which
# every request of the group waits for, falls by a third to a half at about the same CPU
# (measured: 25,000 rows 11.7 -> 7.0 µs an event wall, 11.6 -> 10.5 µs CPU). A view that fails
# still fails the insert (tests/analytics_site/test_insert_faults.py, http_batch).
EMBEDDED_INSERT_SETTINGS = {"parallel_view_processing": 1}

# Events one insert holds at most: five full batches. Larger inserts pay the fixed cost less
# often but hold their rows (~1 KB an event in Python) until the insert is done.
MAX_GROUP_EVENTS = 50_000
# How long a group about to be stored waits at most for requests still being read and checked
# (a 10,000-event batch takes ~50 ms of CPU to parse and check; several at once share the GIL).
ARRIVAL_WAIT = 0.25


class _Pending:
    __slots__ = ("events", "done", "error")

    def __init__(self, events):
        self.events = events
        self.done = False
        self.error = None


class BatchGroupCommit:
    """Stores lists of events, sharing one insert among the lists submitted meanwhile."""

    def __init__(self, *, max_events: int = MAX_GROUP_EVENTS, arrival_wait: float = ARRIVAL_WAIT) -> None:
        self.max_events = max_events
        self.arrival_wait = arrival_wait
        self._lock = threading.Lock()
        # One condition for every waiter: batch requests are few at a time (one per server
        # thread at most), so waking them all when an insert ends costs little.
        self._changed = threading.Condition(self._lock)
        self._pending: list[_Pending] = []
        self._pending_events = 0
        self._arriving = 0  # requests being read and checked, not yet submitted
        self._flushing = False
        self.inserts = 0  # inserts made, for tests
        self.requests = 0  # lists stored, for tests

    @contextmanager
    def arrival(self) -> Iterator[Callable[[list], None]]:
        """A request on its way: counted as arriving while it is read and checked, so that a
        group about to be stored waits for it (at most `arrival_wait`). Yields its submit."""
        with self._lock:
            self._arriving += 1
        submitted = False

        def submit(events: list) -> None:
            nonlocal submitted
            submitted = True
            self.submit(events, arrived=True)

        try:
            yield submit
        finally:
            if not submitted:  # refused (invalid, not JSON, ...): nothing to wait for
                with self._lock:
                    self._arriving -= 1
                    self._changed.notify_all()

    def submit(self, events: list | StagedBatch, *, arrived: bool = False) -> None:
        """Store `events` (normalized rows for events_store, or a batch the engine staged);
        returns once they are stored, raising the insert's error if it failed. `arrived`:
        counted by arrival() until now."""
        mine = _Pending(events)
        with self._lock:
            if arrived:
                self._arriving -= 1
            self._pending.append(mine)
            self._pending_events += len(events)
            self._changed.notify_all()  # a leader waiting for arrivals looks again
            deadline = None
            while not mine.done:
                if not self._flushing and self._pending[0] is mine:
                    # The leader. Requests still being checked are about to join: wait for them
                    # (bounded) rather than pay an insert's fixed cost twice. None arriving (a
                    # client sending one batch after the other): store at once.
                    now = time.monotonic()
                    deadline = deadline or now + self.arrival_wait
                    if self._arriving and self._pending_events < self.max_events and now < deadline:
                        self._changed.wait(deadline - now)
                        continue
                    self._lead()
                else:
                    self._changed.wait()
        if mine.error is not None:
            raise mine.error

    def _lead(self) -> None:
        # Called with the lock held, by the first pending request; the lock is released
        # during the insert so that other requests can join the next group meanwhile.
        group, count = [], 0
        staged = isinstance(self._pending[0].events, StagedBatch)
        # One insert takes batches of one kind: rows checked in Python, or batches the engine
        # staged (viewing/batch_engine.py); a group ends where the kind changes.
        while self._pending and (not group or count + len(self._pending[0].events) <= self.max_events) \
                and isinstance(self._pending[0].events, StagedBatch) == staged:
            item = self._pending.pop(0)
            group.append(item)
            count += len(item.events)
        self._pending_events -= count
        self._flushing = True
        self._lock.release()
        error = None
        try:
            insert_settings = EMBEDDED_INSERT_SETTINGS if settings.CLICKHOUSE_EMBEDDED else None
            if staged:
                staged_store([item.events for item in group], insert_settings=insert_settings)
            else:
                events = group[0].events if len(group) == 1 else [e for item in group for e in item.events]
                events_store(events=events, settings=insert_settings)
        except Exception as e:  # every request of the group gets the insert's error
            error = e
        finally:
            self._lock.acquire()
            for item in group:
                item.done, item.error = True, error
            self._flushing = False
            self.inserts += 1
            self.requests += len(group)
            self._changed.notify_all()


_group_commit = BatchGroupCommit()


def batch_arrival():
    """BatchGroupCommit.arrival of the process's group commit: `with batch_arrival() as store:`
    around reading and checking a batch, then `store(rows)`."""
    return _group_commit.arrival()


def batch_store(*, events: list) -> None:
    """Store one batch request's events through the process's group commit; returns when they
    are stored (raises the insert's error otherwise)."""
    _group_commit.submit(events)


def batch_group_commit() -> BatchGroupCommit:
    """The process's group commit (for tests and metrics)."""
    return _group_commit
