"""The consumer loop as a background thread of the API server process (ENABLE_KAFKA=true):
the only way to consume on the embedded engine, where this process owns the data directory.
Its health (state, reason, last flush, lag, rate) is what /ready and /metrics show."""

import atexit
import logging
import threading
from collections.abc import Callable
from typing import Any

from django.db import connections

from .backoff import Backoff
from .config import ConsumerConfig
from .loop import StreamConsumer

log = logging.getLogger(__name__)

# States of the thread, as /ready and /metrics name them.
STATES = ("not started", "starting", "running", "backing off", "stopped")

_started: "ConsumerThread | None" = None
_started_lock = threading.Lock()


def loop_from_settings() -> StreamConsumer:
    return StreamConsumer(ConsumerConfig.from_settings())


class ConsumerThread:
    """Runs StreamConsumer in a daemon thread and keeps it running: when Kafka (or
    ClickHouse) is unreachable it logs one line and tries again after a bounded, doubling
    delay ("backing off"). A fatal error (a poison flood, settings that cannot work) stops it
    with that reason until it is restarted. Nothing here ever blocks the caller; stop()
    flushes, commits and leaves the group."""

    def __init__(self, *, factory: Callable[[], StreamConsumer] = loop_from_settings,
                 backoff_initial: float = 1.0, backoff_max: float = 60.0) -> None:
        self.factory = factory
        self.backoff = Backoff(initial=backoff_initial, maximum=backoff_max)
        self.loop: StreamConsumer | None = None
        self.state = "not started"
        self.last_error: str | None = None
        self._last_flush: dict[str, Any] | None = None  # of an earlier loop of this thread
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kafka-consumer", daemon=True)

    @property
    def failures(self) -> int:
        """Start attempts that failed since the last successful one."""
        return self.backoff.failures

    def start(self) -> "ConsumerThread":
        self.state = "starting"
        self._thread.start()
        return self

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._keep_running()
        except BaseException as e:  # a bug, not an outage: say so in /ready instead of dying silently
            self.state, self.last_error = "stopped", f"the consumer thread failed: {e!r}"
            log.exception("Kafka consumer thread failed.")

    def _keep_running(self) -> None:
        while not self._stop.is_set():
            try:
                loop = self.factory()
                self.loop = loop
                if self._stop.is_set():  # stop() came while the loop was being built
                    break
                loop.check()
                self.state, self.last_error = "running", None
                self.backoff.reset()
                loop.run()
                if self._stop.is_set():
                    break
            except Exception as e:
                if getattr(e, "fatal", False):
                    # Restarting would give the same answer (or dead-letter the next thousand
                    # messages): wait for an operator.
                    self.state, self.last_error = "stopped", str(e)
                    log.error("Kafka consumer stopped: %s", e)
                    return
                self.state, self.last_error = "backing off", str(e)
                delay = self.backoff.failed()
                # One line per attempt, and attempts are a doubling back-off apart.
                log.warning("Kafka consumer not running: %s. Retrying in %.0f s "
                            "(ENABLE_KAFKA=false runs the server without the consumer thread).", e, delay)
            finally:
                if self.loop is not None:
                    self._last_flush = self.loop.stats.last_flush or self._last_flush
                self.loop = None
                connections.close_all()  # this thread's connections, not the request threads'
            if self._stop.wait(max(0.0, (self.backoff.retry_at or 0.0) - self.backoff.clock())):
                break
        self.state, self.last_error = "stopped", self.last_error or "stop requested"

    def stop(self, timeout: float = 30) -> bool:
        """Ask the loop to flush, commit and leave; wait at most `timeout` seconds."""
        self._stop.set()
        loop = self.loop
        if loop is not None:
            loop.request_stop()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def health(self) -> dict[str, Any]:
        """What /ready and /metrics show: state and reason, the last successful flush, lag per
        partition, messages per second over the last minute. Safe from any thread."""
        loop = self.loop
        stats = loop.stats.snapshot() if loop is not None else None
        state, reason = self.state, self.last_error
        if state == "running" and stats and stats["state"] == "retrying":
            state, reason = "backing off", f"storing in ClickHouse failed: {stats['last_error']}"
        elif state not in ("not started", "stopped") and not self.is_alive():
            state, reason = "stopped", reason or "the consumer thread exited"
        return {
            "state": state,
            "reason": reason if state in ("backing off", "stopped") else None,
            "last_flush": (stats and stats["last_flush"]) or self._last_flush,
            "lag": stats["lag"] if stats else {},
            "messages_per_second": stats["messages_per_second"] if stats else 0.0,
        }


def start_consumer_thread() -> ConsumerThread:
    """Start the process's consumer thread once (later calls return the same one); it is
    stopped cleanly at interpreter exit."""
    global _started
    with _started_lock:
        if _started is None:
            _started = ConsumerThread().start()
            atexit.register(_stop_at_exit)
            log.info("Kafka consumer thread started (ENABLE_KAFKA=true).")
        return _started


def restart_consumer_thread() -> ConsumerThread:
    """Stop the process's consumer thread (if it still runs) and start a new one: after a
    fatal stop, once its cause is fixed."""
    global _started
    with _started_lock:
        old = _started
        if old is not None:
            old.stop()
        _started = ConsumerThread(factory=old.factory if old is not None else loop_from_settings).start()
        if old is None:
            atexit.register(_stop_at_exit)
        log.info("Kafka consumer thread restarted.")
        return _started


def consumer_thread() -> ConsumerThread | None:
    """The process's consumer thread, None when this process has not started one."""
    return _started


def _stop_at_exit() -> None:
    if _started is not None:
        _started.stop()
