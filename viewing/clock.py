"""The service's clock: `now()` and `today()` in UTC, which tests can freeze with `frozen()`."""

import threading
from contextlib import contextmanager
from datetime import UTC, datetime

# A frozen moment applies to every thread (a test's request may run in a worker thread).
_lock = threading.Lock()
_frozen = None


def now():
    """The current time, timezone-aware UTC, second precision."""
    moment = _frozen if _frozen is not None else datetime.now(UTC)
    return moment.replace(microsecond=0)


def today():
    """The current UTC calendar date."""
    return now().date()


@contextmanager
def frozen(moment):
    """Make `now()` return `moment` (a timezone-aware datetime) inside the block."""
    global _frozen
    if moment.tzinfo is None:
        raise ValueError("frozen() needs a timezone-aware datetime")
    with _lock:
        previous, _frozen = _frozen, moment.astimezone(UTC)
    try:
        yield moment
    finally:
        with _lock:
            _frozen = previous
