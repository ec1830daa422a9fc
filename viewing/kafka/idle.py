"""When `--exit-on-idle` may stop the loop: nothing new for that long, nothing buffered
(before the first assignment: extra time for the group to form), and the group has read every
partition of its topics to the end. Partitions it cannot get end the run with an error."""

import logging
import time
from collections.abc import Callable

from kafka import KafkaConsumer, TopicPartition

from .config import ConsumerConfig
from .errors import ConsumerError
from .offsets import OffsetLedger
from .progress import GroupProgress, Unread

log = logging.getLogger("viewing.kafka.loop")

# Seconds between two checks of the group's progress while waiting for other members.
CHECK_EVERY_S = 1.0


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


class NotReadToEnd(ConsumerError):
    """Idle, but some partitions of the topics are not read to their end and nothing moved
    them for the whole patience: usually a member that died still holds them."""


class RunToEnd:
    """The last check of --exit-on-idle. Idle here means this member has nothing more to read;
    other members (alive, or dead and not yet evicted: a member keeps its partitions until its
    session expires) may still hold unread partitions. They are waited for as long as they
    make progress, and `patience` seconds at most without any; then NotReadToEnd names them."""

    def __init__(self, *, progress: GroupProgress, group: str, patience_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.progress = progress
        self.group = group
        self.patience_s = patience_s
        self.clock = clock
        self._next_check = 0.0
        self._waiting_since: float | None = None
        self._last: tuple[int, frozenset] | None = None  # (unread messages, assignment) of the last check

    @classmethod
    def of(cls, config: ConsumerConfig, exit_on_idle: float) -> "RunToEnd":
        """The check for one run: patience of twice the session timeout (Tansu evicts a dead
        member after ~1.8 × the session timeout; Kafka after it, then rebalances), at least
        `exit_on_idle`."""
        return cls(progress=GroupProgress(config), group=config.group_id,
                   patience_s=max(exit_on_idle, 2 * config.session_timeout_ms / 1000))

    def done(self, consumer: KafkaConsumer, offsets: OffsetLedger) -> bool:
        """True when every partition is read to its end; False to keep consuming; raises
        NotReadToEnd when the patience ran out."""
        now = self.clock()
        if now < self._next_check:
            return False
        self._next_check = now + CHECK_EVERY_S
        if offsets.uncommitted:  # stored rows whose commit failed: the check counts commits
            offsets.commit(consumer, {})
        try:
            unread = self.progress.unread()
        except Exception as e:  # the broker did not answer the check: not done, tried again
            self._waiting_since = now if self._waiting_since is None else self._waiting_since
            if now - self._waiting_since < self.patience_s:
                log.warning("Checking how far group %s has read failed: %s; trying again.", self.group, e)
                return False
            raise NotReadToEnd(f"Could not check that group {self.group} has read every partition to its "
                               f"end: {e}. Not done: run again.") from e
        assignment = consumer.assignment()
        if not unread:
            log.info("Nothing new, and group %s has read every partition to its end: stopping.", self.group)
            return True
        state = (sum(u.end - (u.committed or 0) for u in unread), frozenset(assignment))
        if self._last is None or state != self._last:  # progress, or a rebalance: wait again
            if self._last is None:
                log.info("Nothing new, but group %s has not read %s to the end: waiting up to %.0f s for "
                         "them (another member holds them).", self.group, describe_unread(unread), self.patience_s)
            self._waiting_since, self._last = now, state
        if now - self._waiting_since < self.patience_s:
            return False
        held = [u for u in unread if TopicPartition(u.topic, u.partition) not in assignment]
        raise NotReadToEnd(
            f"Group {self.group} has not read every partition to its end: {describe_unread(unread)}; "
            f"nothing moved for {self.patience_s:.0f} s. "
            + (f"Not assigned to this member: {', '.join(f'{u.topic}[{u.partition}]' for u in held)} (another "
               f"member holds them; a dead one until its session expires, KAFKA_SESSION_TIMEOUT_MS). " if held else "")
            + "Not done: run again (the group goes on from its committed offsets)."
        )

    def close(self) -> None:
        self.progress.close()


def describe_unread(unread: list[Unread]) -> str:
    return ", ".join(str(u) for u in unread)
