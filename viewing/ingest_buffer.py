"""A short group-commit buffer for single events: concurrent requests share one insert.

Why: one INSERT per single-event request would make one ClickHouse part per request (plus
one per materialized view) under load. Here each request adds its event and waits; one of the
waiting request threads (the leader) takes everything pending and stores it with one
`events_store` call, then wakes the others. When the service is idle the first event is
stored at once; under load a flush starts at most every `INGEST_FLUSH_INTERVAL` seconds
(or as soon as `INGEST_FLUSH_EVENTS` are pending), so parts are made per interval, not per
request. A request returns only after its flush, so a 201 means stored and visible.

On a ClickHouse server the flush also asks for `async_insert=1, wait_for_async_insert=1`,
so the server coalesces the inserts of several worker processes as well.

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


class _Slot:
    __slots__ = ("event", "done", "error")

    def __init__(self, event):
        self.event = event
        self.done = False
        self.error = None


class IngestBuffer:
    def __init__(self, *, interval, max_events, insert_settings=None):
        self.interval = interval
        self.max_events = max_events
        self.insert_settings = insert_settings
        self._cond = threading.Condition()
        self._pending = []
        self._flushing = False
        self._last_flush = float("-inf")
        self.flushes = 0  # inserts made, for tests and logs

    def submit(self, event):
        """Store one normalized event (a row dict for events_store); returns once it is
        stored, raising the insert's error if that failed."""
        slot = _Slot(event)
        with self._cond:
            self._pending.append(slot)
            self._cond.notify_all()
            while not slot.done:
                wait = self._last_flush + self.interval - time.monotonic()
                full = len(self._pending) >= self.max_events
                if not self._flushing and (wait <= 0 or full):
                    self._lead()
                else:
                    self._cond.wait(timeout=None if self._flushing else wait)
        if slot.error is not None:
            raise slot.error
        return event

    def flush(self):
        """Store everything pending now (at exit; a leader's work otherwise)."""
        with self._cond:
            while self._flushing:
                self._cond.wait()
            if self._pending:
                self._lead()

    def _lead(self):
        # Called with the lock held; releases it during the insert so others can queue.
        batch, self._pending = self._pending[: self.max_events], self._pending[self.max_events :]
        self._flushing = True
        self._last_flush = time.monotonic()
        self._cond.release()
        error = None
        try:
            events_store(events=[slot.event for slot in batch], settings=self.insert_settings)
        except Exception as e:  # every waiter of this batch gets the insert's error
            error = e
        finally:
            self._cond.acquire()
            for slot in batch:
                slot.done, slot.error = True, error
            self._flushing = False
            self.flushes += 1
            self._cond.notify_all()


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
                insert_settings=None if settings.CLICKHOUSE_EMBEDDED else SERVER_INSERT_SETTINGS,
            )
            atexit.register(_buffer.flush)
        return _buffer


def event_ingest(*, event):
    """Store one event through the process's buffer; returns when it is stored."""
    return ingest_buffer().submit(event)
