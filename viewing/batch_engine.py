"""The batch endpoint's engine path: a body in the common shape read, checked and converted by
the embedded engine itself (viewing/engine_stage.py), then stored with the batches of its group
commit by one INSERT ... SELECT (viewing/engine_store.py); any other body goes through the
rules (viewing/serializers.py), which word every error.

The HTTP fields: the id is `id` (a random one when absent, as the rules give), the type
`event_type` (required), the time the second of receipt when absent; at most 10,000 items.
"""

from datetime import datetime

from .engine_stage import Fields, StagedBatch, bounds_params, stage, stage_sql

MAX_ITEMS = 10_000
HTTP_FIELDS = Fields(id_field="id", type_field="event_type", default_id="generateUUIDv4()", default_type="''",
                     default_time="%(now_seconds)s")
STAGE = stage_sql(HTTP_FIELDS)


def stage_batch(body: bytes, *, now: datetime, retention_days: int, using: str = "clickhouse") -> StagedBatch | None:
    """The body's events staged by the engine, or None when the rules must decide. `now`: the
    time of receipt, the bounds' reference."""
    return stage(body, sql=STAGE, params=bounds_params(now, retention_days), max_items=MAX_ITEMS, using=using)
