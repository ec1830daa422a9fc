"""The batch endpoint's engine path: a body in the common shape read, checked and converted by
the embedded engine itself, in one query with the other bodies of its group commit (their
leader stages them: viewing/batch_commit.py, viewing/engine_stage.py), then stored with them by
one INSERT ... SELECT (viewing/engine_store.py); any other body, and one the engine declines,
goes through the rules (viewing/serializers.py), which word every error.

The HTTP fields: the id is `id` (a random one when absent, as the rules give), the type
`event_type` (required), the time the second of receipt when absent; at most 10,000 items.

A body the engine declines has cost its read (~6 µs an event for 10,000) on top of the rules.
A producer whose batches the engine always declines (say, floats in every metadata) would pay
that on every batch, so after a decline the next batches skip the engine: 1, then 2, 4, ... up
to 64 after declines in a row; one batch taken resets it. Which path a batch takes never
changes its answer or its rows (tests/viewing/test_batch_engine.py).
"""

import threading
from datetime import datetime

from .engine_stage import (
    Fields,
    StagedBatch,
    bounds_params,
    engine_checks_enabled,
    stage_bodies,
)

MAX_ITEMS = 10_000
HTTP_FIELDS = Fields(id_field="id", type_field="event_type", default_id="generateUUIDv4()", default_type="''",
                     default_time="now_seconds")
MAX_SKIP = 64


class _Backoff:
    """How many batches skip the engine after declines in a row."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.skip = 0  # batches still to skip
        self.next = 1  # batches to skip after the next decline

    def should_try(self) -> bool:
        with self.lock:
            if self.skip:
                self.skip -= 1
                return False
            return True

    def record(self, taken: bool) -> None:
        with self.lock:
            if taken:
                self.next = 1
            else:
                self.skip, self.next = self.next, min(self.next * 2, MAX_SKIP)


backoff = _Backoff()


class RawBatch:
    """A batch body for the engine to stage, with its time of receipt (the bounds'
    reference). `len()`: at most its events (its `{` count, capped), for the group's size."""

    __slots__ = ("body", "bounds", "size")

    def __init__(self, body: bytes, *, now: datetime, retention_days: int) -> None:
        self.body, self.bounds = body, bounds_params(now, retention_days)
        self.size = min(body.count(b"{"), MAX_ITEMS)

    def __len__(self) -> int:
        return self.size


def engine_may_try() -> bool:
    """Whether the next batch goes to the engine (not while skipping after declines)."""
    return engine_checks_enabled() and backoff.should_try()


def stage_group(batches: list[RawBatch], *, using: str = "clickhouse") -> tuple[list[StagedBatch], list[int | None]]:
    """The bodies of a group commit staged in one query (viewing/engine_stage.stage_bodies):
    the staged batches and, for each body, its number of events or None (the rules decide)."""
    staged, counts = stage_bodies([(b.body, b.bounds) for b in batches], fields=HTTP_FIELDS, max_items=MAX_ITEMS,
                                  using=using)
    for count in counts:
        backoff.record(count is not None)
    return staged, counts

