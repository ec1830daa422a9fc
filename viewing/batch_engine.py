"""The batch endpoint's engine path: a body in the common shape read, checked and converted by
the embedded engine itself (viewing/engine_stage.py), then stored with the batches of its group
commit by one INSERT ... SELECT (viewing/engine_store.py); any other body goes through the
rules (viewing/serializers.py), which word every error. The bodies of concurrent requests are
staged by one query (viewing/stage_group.py).

The HTTP fields: the id is `id` (a random one when absent, as the rules give), the type
`event_type` (required), the time the second of receipt when absent; at most 10,000 items.

A body the engine declines has cost its read (~6 µs an event for 10,000) on top of the rules.
A producer whose batches the engine always declines (say, floats in every metadata) would pay
that on every batch, so after a decline the next batches skip the engine: 1, then 2, 4, ... up
to 64 after declines in a row; one batch taken resets it. Which path a batch takes never
changes its answer or its rows (tests/viewing/test_batch_engine.py).
"""

import functools
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .engine_stage import (
    Fields,
    StagedBatch,
    bounds_params,
    engine_checks_enabled,
    may_stage,
    stage_bodies,
    stage_sql,
)
from .stage_group import StagingGroup

MAX_ITEMS = 10_000
HTTP_FIELDS = Fields(id_field="id", type_field="event_type", default_id="generateUUIDv4()", default_type="''",
                     default_time="now_seconds")
STAGE = functools.partial(stage_sql, HTTP_FIELDS)  # STAGE(n): for n bodies
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


def _stage_together(items: Sequence[tuple[bytes, dict[str, Any]]]) -> list[StagedBatch | None]:
    return stage_bodies(items, sql_for=STAGE, max_items=MAX_ITEMS)


staging_group = StagingGroup(_stage_together)


def staging_arrival():
    """`with staging_arrival():` around reading a batch request's body and stage_batch, so that
    the bodies of requests sent together are staged together (viewing/stage_group.py)."""
    return staging_group.arrival()


def stage_batch(body: bytes, *, now: datetime, retention_days: int) -> StagedBatch | None:
    """The body's events staged by the engine, or None when the rules must decide (declined,
    or skipped after declines). `now`: the time of receipt, the bounds' reference."""
    if not engine_checks_enabled() or not backoff.should_try():
        return None
    if not may_stage(body):
        staged = None
    else:
        staged = staging_group.stage((body, bounds_params(now, retention_days)))
    backoff.record(staged is not None)
    return staged
