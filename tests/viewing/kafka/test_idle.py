"""--exit-on-idle: the idle clock (pure), and the check that the group has read every
partition to its end (against a real broker)."""

import random
import socket
import threading
import time

import pytest
from kafka import KafkaConsumer

from tests.kafka_broker import (
    TEST_HEARTBEAT_INTERVAL_MS,
    TEST_SESSION_TIMEOUT_MS,
    make_loop,
    produce_stream,
    wait_until,
)
from viewing.kafka.config import ConsumerConfig
from viewing.kafka.idle import IdleClock, NotReadToEnd, RunToEnd
from viewing.kafka.offsets import OffsetLedger
from viewing.kafka.progress import GroupProgress


def test_idle_only_with_nothing_buffered_and_with_a_grace_before_the_first_assignment():
    now = [0.0]
    idle = IdleClock(join_grace_s=6, clock=lambda: now[0])
    now[0] = 5
    assert not idle.expired(2, buffered=0)  # still joining: 2 + 6 s
    now[0] = 8
    assert idle.expired(2, buffered=0)
    idle.assigned()
    now[0] = 9.9
    assert not idle.expired(2, buffered=0)
    now[0] = 10
    assert idle.expired(2, buffered=0)
    assert not idle.expired(2, buffered=1)  # not idle until everything is stored
    idle.revoked()  # a rebalance: the grace again
    now[0] = 14
    assert not idle.expired(2, buffered=0)


@pytest.mark.kafka
@pytest.mark.slow
def test_exit_on_idle_does_not_stop_while_another_member_holds_unread_partitions(ch, kafka):
    # A live member that reads but never commits: the group has not read its partitions.
    holder = KafkaConsumer(*kafka.topics, bootstrap_servers=kafka.bootstrap, group_id=kafka.group(),
                           enable_auto_commit=False, auto_offset_reset="earliest",
                           session_timeout_ms=TEST_SESSION_TIMEOUT_MS, heartbeat_interval_ms=TEST_HEARTBEAT_INTERVAL_MS)
    stop = threading.Event()

    def keep_polling():
        while not stop.is_set():
            holder.poll(timeout_ms=200)

    wait_until(lambda: holder.poll(timeout_ms=200) is not None and len(holder.assignment()) == 9, 90,
               "the holder to own every partition")  # a join took over 30 s on a loaded machine
    poller = threading.Thread(target=keep_polling, daemon=True)
    poller.start()
    try:
        facts, sent = produce_stream(kafka, random.Random(8), 90)
        loop = make_loop(kafka)
        started = time.monotonic()
        with pytest.raises(NotReadToEnd) as caught:
            loop.run(exit_on_idle=1)
        took = time.monotonic() - started
        mine = set(loop.stats.assignment)
    finally:
        stop.set()
        poller.join(10)
        holder.close(autocommit=False)
    message = str(caught.value)
    assert f"Group {kafka.group()} has not read every partition to its end" in message
    assert 0 < len(mine) < 9  # the partitions were split; this member read its own share
    held = {f"{t}[{p}]" for t in kafka.topics for p in range(3)} - mine
    committed = kafka.committed(kafka.group())
    produced = kafka.produced_offsets()
    unread = {f"{t}[{p}]" for (t, p), end in produced.items() if committed.get((t, p), 0) < end}
    assert unread and unread <= held  # everything of its own share is committed
    for name in unread:
        assert name in message
    assert "Not assigned to this member" in message
    # Bounded: the patience is twice the session timeout, after the group formed.
    assert took < 1 + 2 * TEST_SESSION_TIMEOUT_MS / 1000 + 30


def test_a_check_the_broker_does_not_answer_is_not_done_and_ends_in_an_error_after_the_patience():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nobody = f"127.0.0.1:{s.getsockname()[1]}"  # nothing listens once the socket is closed
    config = ConsumerConfig(bootstrap_servers=nobody, topics=["t"], group_id="g", dlq_topic="d",
                            bootstrap_timeout_ms=300)
    now = [0.0]
    run = RunToEnd(progress=GroupProgress(config), group="g", patience_s=2, clock=lambda: now[0])
    try:
        assert run.done(None, OffsetLedger()) is False  # not done: tried again
        now[0] = 2.5
        with pytest.raises(NotReadToEnd, match="Could not check that group g has read every partition"):
            run.done(None, OffsetLedger())
    finally:
        run.close()
