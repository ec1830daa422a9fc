"""What the server's consumer thread logs while no broker answers: one line per attempt, the
attempts a doubling back-off apart, each saying how to run without the thread."""

import logging
import socket
import time

import pytest

from tests.viewing.kafka.test_thread import loop_factory
from viewing.kafka.thread import ConsumerThread

pytestmark = [pytest.mark.kafka]


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_broker_is_logged_once_per_back_off_step(ch, caplog):
    thread = ConsumerThread(factory=loop_factory(f"127.0.0.1:{closed_port()}", bootstrap_timeout_ms=200),
                            backoff_initial=0.25, backoff_max=1.0)
    with caplog.at_level(logging.INFO, logger="viewing.kafka"):
        thread.start()
        deadline = time.monotonic() + 20
        while len([r for r in caplog.records if r.levelno == logging.WARNING]) < 4:
            assert time.monotonic() < deadline, caplog.text
            time.sleep(0.05)  # the thread's attempts take their time: poll the log with a bound
        assert thread.stop(timeout=30)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert all(r.name == "viewing.kafka.thread" for r in warnings), caplog.text
    for record in warnings:
        message = record.getMessage()
        assert message.startswith("Kafka consumer not running: Kafka is not reachable at 127.0.0.1:"), message
        assert message.endswith("(ENABLE_KAFKA=false runs the server without the consumer thread).")
        assert "\n" not in message and record.exc_info is None
    # One line per attempt: each after the previous one's back-off (0.25, 0.5, 1.0, 1.0 s).
    for step, (earlier, later) in enumerate(zip(warnings, warnings[1:], strict=False)):
        assert later.created - earlier.created >= min(1.0, 0.25 * 2 ** step) * 0.9, caplog.text
