"""The consumer loop as a background thread of the API server process (ENABLE_KAFKA=true):
the only way to consume on the embedded engine, where this process owns the data directory."""

import atexit
import logging
import threading

from django.db import connections

from .loop import PoisonFlood, StreamConsumer

log = logging.getLogger(__name__)

_started = None
_started_lock = threading.Lock()


class ConsumerThread:
    """Runs StreamConsumer in a daemon thread and keeps it running: when Kafka (or
    ClickHouse) is unreachable it logs one line and tries again after a bounded, doubling
    delay. Nothing here ever blocks the caller; stop() flushes, commits and leaves the group."""

    def __init__(self, *, factory=StreamConsumer.from_settings, backoff_initial=1.0, backoff_max=60.0):
        self.factory = factory
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.loop = None
        self.state = "not started"
        self.last_error = None
        self.failures = 0  # start attempts that failed since the last successful one
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kafka-consumer", daemon=True)

    def start(self):
        self.state = "starting"
        self._thread.start()
        return self

    def is_alive(self):
        return self._thread.is_alive()

    def _run(self):
        delay = self.backoff_initial
        while not self._stop.is_set():
            try:
                loop = self.factory()
                self.loop = loop
                if self._stop.is_set():  # stop() came while the loop was being built
                    break
                loop.check()
                self.state = "running"
                self.failures = 0
                delay = self.backoff_initial
                loop.run()
                if self._stop.is_set():
                    break
            except PoisonFlood as e:
                # Restarting would only dead-letter the next thousand: wait for an operator.
                self.state, self.last_error = "stopped", str(e)
                log.error("Kafka consumer stopped: %s", e)
                return
            except Exception as e:
                self.state, self.last_error = "waiting", str(e)
                self.failures += 1
                log.warning("Kafka consumer not running: %s. Retrying in %.0f s.", e, delay)
            finally:
                self.loop = None
                connections.close_all()  # this thread's connections, not the request threads'
            if self._stop.wait(delay):
                break
            delay = min(self.backoff_max, delay * 2)
        self.state = "stopped"

    def stop(self, timeout=30):
        """Ask the loop to flush, commit and leave; wait at most `timeout` seconds."""
        self._stop.set()
        loop = self.loop
        if loop is not None:
            loop.request_stop()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()


def start_consumer_thread():
    """Start the process's consumer thread once (later calls return the same one); it is
    stopped cleanly at interpreter exit."""
    global _started
    with _started_lock:
        if _started is None:
            _started = ConsumerThread().start()
            atexit.register(_started.stop)
            log.info("Kafka consumer thread started (ENABLE_KAFKA=true).")
        return _started
