"""The consumer's engine path: the messages of one partition from one poll, read, checked and
converted by the embedded engine itself (viewing/engine_stage.py) and stored with the rest of
the flush by one INSERT ... SELECT (viewing/engine_store.py). When the engine declines (a
message it cannot take as the rules would: another form of a value, an invalid one, an empty
value), the loop processes those messages with process_records as before: the same rows, dead
letters and poison count.

The Kafka fields: the id is `event_id`, else uuid5(KAFKA_EVENT_NAMESPACE, "topic:partition:offset")
(computed here in SQL: SHA-1, version and variant bits, as uuid.uuid5); the type `action`, else
the topic's (topic_event_type); the time `event_time`, else `timestamp`, else the record's
timestamp (milliseconds; none when negative or absent).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from viewing.engine_stage import Fields, StagedBatch, bounds_params, stage, stage_sql

from .processor import KAFKA_EVENT_NAMESPACE, topic_event_type

# uuid5 of "topic:partition:offset" for row n: SHA-1 of the namespace's bytes and the name, its
# first 16 bytes with the version nibble 5 and the variant bits 10.
_DERIVED_ID = """toUUID(lower(concat(
        substring(sha, 1, 12), '5', substring(sha, 14, 3),
        substring('89AB', modulo(reinterpretAsUInt8(unhex(concat('0', substring(sha, 17, 1)))), 4) + 1, 1),
        substring(sha, 18, 15))))"""
_SHA = (f"hex(SHA1(concat(unhex('{KAFKA_EVENT_NAMESPACE.hex}'), %(topic)s, ':', toString(%(partition)s), ':', "
        "toString(arrayElement(%(offsets)s, n)))))")
KAFKA_FIELDS = Fields(
    id_field="event_id", type_field="action",
    default_id=_DERIVED_ID.replace("sha", "(" + _SHA + ")"),
    default_type="%(topic_type)s",
    default_time="if(arrayElement(%(timestamps)s, n) >= 0, intDiv(arrayElement(%(timestamps)s, n), 1000), NULL)",
)
STAGE = stage_sql(KAFKA_FIELDS)


def stage_records(messages: Sequence[Any], *, topic: str, partition: int, now: datetime, retention_days: int,
                  using: str = "clickhouse") -> StagedBatch | None:
    """The events of these records (kafka-python ConsumerRecords of one partition, in order)
    staged by the engine, or None when the rules must decide. `now`: the poll's time."""
    values = [m.value for m in messages]
    if not values or None in values:
        return None
    params = {
        **bounds_params(now, retention_days),
        "topic": topic,
        "partition": partition,
        "topic_type": topic_event_type(topic),
        "offsets": [m.offset for m in messages],
        "timestamps": [-1 if m.timestamp is None else m.timestamp for m in messages],
    }
    return stage(b"[" + b",".join(values) + b"]", sql=STAGE, params=params, expected=len(values), using=using)
