"""A short group-commit buffer for single events: concurrent requests share one insert.

Why: one INSERT per single-event request would make one ClickHouse part per request (plus
one per materialized view) under load. Here each request adds its event and waits; one of the
waiting request threads (the leader) takes everything pending and stores it with one
`events_store` call, then wakes the others. When the service is idle the first event is
stored at once; under load a flush starts at most every `INGEST_FLUSH_INTERVAL` seconds
(or as soon as `INGEST_FLUSH_EVENTS` are pending), so parts are made per interval, not per
request: a time window, so the number of inserts a second — each costs the engine a fixed
amount of CPU — stays bounded whatever the arrival rate. A request returns only after its
flush, so a 201 means stored and visible.

On a ClickHouse server the flush also asks for `async_insert=1, wait_for_async_insert=1`,
so the server coalesces the inserts of several worker processes as well; on the embedded
engine for `parallel_view_processing=1` (a shorter insert, so a shorter wait).

No thread of its own: every buffered event has a request thread waiting on it, and the
process's graceful shutdown (gunicorn waits for requests in flight) therefore flushes it.
`flush()` runs at exit too, for anything still pending.
"""

import atexit
import threading
import time

from django.conf import settings

from .services import events_store

# What a ClickHouse server needs to coalesce small inserts itself (the embedded engine has
# one process, which this buffer already coalesces).
SERVER_INSERT_SETTINGS = {"async_insert": 1, "wait_for_async_insert": 1}
# On the embedded engine: the views of a flush run side by side instead of one after the
# other. Measured (one process, 200-250-event inserts alternating with and without, 25-30
# each, the machine shared): the insert's wall time 143 -> 111 ms and 145 -> 78 ms at the same
# CPU (61 vs 65, 71 vs 56 ms), and a waiting request waits for the insert's wall time. A view
# that fails still fails the insert (tests/analytics_site/test_insert_faults.py, http_single).
EMBEDDED_INSERT_SETTINGS = {"parallel_view_processing": 1}


class _Slot:
    __slots__ = ("event", "done", "error", "signal")

    def __init__(self, event):
        self.event = event
        self.done = False
        self.error = None
        # Set when this slot's thread has something to look at: its flush is done, or it is
        # first in line (the next flush's leader) and may flush now. One Event per request:
        # a shared condition with notify_all woke every waiting request thread for every new
        # event, hundreds of wake-ups an event with a few hundred requests waiting, which
        # was most of the server's time under load.
        self.signal = threading.Event()


class IngestBuffer:
    def __init__(self, *, interval, max_events, insert_settings=None):
        self.interval = interval
        self.max_events = max_events
        self.insert_settings = insert_settings
        self._lock = threading.Lock()
        self._flushed = threading.Condition(self._lock)  # only flush() waits on it
        self._pending = []  # the first slot's thread leads the next flush
        self._flushing = False
        self._last_flush = float("-inf")
        self.flushes = 0  # inserts made, for tests and logs
        self.wakeups = 0  # times a waiting request thread woke up, for tests

    def submit(self, event):
        """Store one normalized event (a row dict for events_store); returns once it is
        stored, raising the insert's error if that failed."""
        slot = _Slot(event)
        with self._lock:
            self._pending.append(slot)
            if len(self._pending) >= self.max_events:
                self._pending[0].signal.set()  # a full batch: its leader need not wait
        woke = -1
        while True:
            woke += 1
            with self._lock:
                if slot.done:
                    self.wakeups += woke
                    break
                timeout = None
                if not self._flushing and self._pending[0] is slot:
                    wait = self._last_flush + self.interval - time.monotonic()
                    if wait <= 0 or len(self._pending) >= self.max_events:
                        self._lead()
                        continue
                    timeout = wait
                slot.signal.clear()
            slot.signal.wait(timeout)
        if slot.error is not None:
            raise slot.error
        return event

    def flush(self):
        """Store everything pending now (at exit; a leader's work otherwise)."""
        with self._lock:
            while self._flushing:
                self._flushed.wait()
            if self._pending:
                self._lead()

    def _lead(self):
        # Called with the lock held; releases it during the insert so others can queue.
        batch, self._pending = self._pending[: self.max_events], self._pending[self.max_events :]
        self._flushing = True
        self._last_flush = time.monotonic()
        self._lock.release()
        error = None
        try:
            events_store(events=[slot.event for slot in batch], settings=self.insert_settings)
        except Exception as e:  # every waiter of this batch gets the insert's error
            error = e
        finally:
            self._lock.acquire()
            for slot in batch:
                slot.done, slot.error = True, error
                slot.signal.set()
            self._flushing = False
            self.flushes += 1
            if self._pending:
                self._pending[0].signal.set()  # the next leader: flush when its time comes
            self._flushed.notify_all()


_buffer = None
_buffer_lock = threading.Lock()


def ingest_buffer():
    """The process's buffer, made from settings on first use."""
    global _buffer
    with _buffer_lock:
        if _buffer is None:
            _buffer = IngestBuffer(
                interval=settings.INGEST_FLUSH_INTERVAL,
                max_events=settings.INGEST_FLUSH_EVENTS,
                insert_settings=EMBEDDED_INSERT_SETTINGS if settings.CLICKHOUSE_EMBEDDED else SERVER_INSERT_SETTINGS,
            )
            atexit.register(_buffer.flush)
        return _buffer


def event_ingest(*, event):
    """Store one event through the process's buffer; returns when it is stored."""
    return ingest_buffer().submit(event)
