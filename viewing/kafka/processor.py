"""The pure message processor: one Kafka record's bytes and coordinates in, a storable event
row out (or MessageInvalid with every error); and the processing step that feeds a poll's
records to the batcher. No I/O: unit-tested without a broker."""

import functools
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson

from viewing.events import (
    EVENT_TYPES,
    MAX_POSITION,
    EventInvalid,
    common_time,
    normalize_event,
    serialize_metadata,
)

from .batcher import Batcher, DeadLetter
from .dlq import PoisonPolicy

# Namespace of the ids derived for messages without `event_id`: uuid5(KAFKA_EVENT_NAMESPACE,
# f"{topic}:{partition}:{offset}"). Fixed forever: a replayed message must get the same id,
# or it would be counted twice. (It is uuid5(NAMESPACE_URL, "urn:viewing-analytics:kafka").)
KAFKA_EVENT_NAMESPACE = uuid.UUID("7de86edc-561c-5c7d-8ac3-2bcd6808f872")
_SPELLINGS_LONGEST_FIRST = sorted(EVENT_TYPES, key=len, reverse=True)
# orjson parses a message ~4x faster than json. Where it accepts a document it returns what
# json.loads does, except integers beyond 64 bits, which it turns into floats (a position of
# 10**30 would then get another error, metadata another value). So a message with a run of 19
# digits or more, and anything orjson refuses (NaN, Infinity, bad UTF-8, lone surrogates, ...),
# goes through json as before: what is accepted and how errors read do not change. (The run is
# found by mapping every digit to 0 and searching for 19 zeros: a regex search takes 5x longer.)
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


class _CommonMessage(msgspec.Struct, gc=False):
    """A message in the shape producers send (canonical or 32-digit UUIDs, a listed type, an
    integer position, an ISO-8601 time string, a metadata object), decoded and typed in one
    pass by msgspec (~1 µs; JSON and the event rules in Python take ~8). A value of any other
    type makes decoding fail, and the message goes through the rules as before. Not tracked by
    the garbage collector (gc=False): it lives for one message and holds no cycle."""

    user_id: uuid.UUID
    movie_id: uuid.UUID
    session_id: uuid.UUID | None = None
    event_id: uuid.UUID | None = None
    action: str | None = None
    event_time: str | None = None
    timestamp: str | None = None
    position_seconds: int | None = None
    metadata: dict | None = None


_COMMON_DECODER = msgspec.json.Decoder(_CommonMessage)


class MessageInvalid(ValueError):
    """A record that cannot become an event; `errors` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items()))


@functools.lru_cache(maxsize=1024)
def topic_event_type(topic: str) -> str:
    """The event-type spelling a topic stands for: its whole name (`stream.start`) or its end
    after a `.`, `_` or `-` (`staging.stream.start`), so environment prefixes keep working.
    Unknown topics give their own name back, which the event rules then reject by name."""
    if topic in EVENT_TYPES:
        return topic
    for spelling in _SPELLINGS_LONGEST_FIRST:
        if topic.endswith(spelling) and topic[-len(spelling) - 1] in "._-":
            return spelling
    return topic


def derived_event_id(topic: str, partition: int, offset: int) -> uuid.UUID:
    """The id of a message that carries no `event_id` (stable across replays)."""
    return uuid.uuid5(KAFKA_EVENT_NAMESPACE, f"{topic}:{partition}:{offset}")


def parse_json(value: bytes) -> Any:
    """The JSON document of a message value (bytes), or MessageInvalid."""
    if _LONG_NUMBER not in value.translate(_DIGITS_TO_ZERO):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            pass  # json below decides, and words the error
    try:
        # Decoded as UTF-8 explicitly: json.loads(bytes) would also guess UTF-16/32.
        return json.loads(value.decode("utf-8"))
    except UnicodeDecodeError:
        raise MessageInvalid({"non_field_errors": ["Not UTF-8 text."]}) from None
    except ValueError as e:
        raise MessageInvalid({"non_field_errors": [f"Not valid JSON: {e}."]}) from None


def _common_row(value: bytes, topic: str, partition: int, offset: int, now: datetime,
                retention_days: int) -> dict[str, Any] | None:
    """process_message's row for a message in the common shape with a time of its own, else
    None (the rules decide). The same row as the rules give (tests/viewing/kafka/test_processor.py):
    msgspec reads every UUID form it accepts (36 or 32 hex digits, any case) to the value the
    rules read, takes the last of repeated keys and keeps integers of any size exact as json
    does, and refuses a float, a bool or a string where a number belongs."""
    try:
        m = _COMMON_DECODER.decode(value)
    except (msgspec.MsgspecError, ValueError):  # ValueError: bytes that are not UTF-8 text
        return None
    event_type = EVENT_TYPES.get(m.action if m.action is not None else topic_event_type(topic))
    position = 0 if m.position_seconds is None else m.position_seconds
    raw_time = m.event_time if m.event_time is not None else m.timestamp
    if event_type is None or not 0 <= position <= MAX_POSITION or raw_time is None:
        return None
    if (moment := common_time(raw_time, now, retention_days)) is None:
        return None
    try:
        metadata = "{}" if m.metadata is None else serialize_metadata(m.metadata)
    except ValueError:
        return None
    return {
        "user_id": m.user_id,
        "movie_id": m.movie_id,
        "session_id": m.session_id,
        "event_type": event_type,
        "position_seconds": position,
        "event_time": moment,
        "metadata": metadata,
        "id": m.event_id if m.event_id is not None else derived_event_id(topic, partition, offset),
    }


def process_message(value: bytes | None, *, topic: str, partition: int, offset: int, timestamp_ms: int | None,
                    now: datetime, retention_days: int = 365) -> dict[str, Any]:
    """The event row (queries.EVENT_COLUMNS but created_at) of one record, or MessageInvalid.

    `action` decides the type, the topic (topic_event_type) when it is absent; the record's timestamp is the
    event time when the message has none; `event_id`, else the derived id, is the id.
    """
    if value is not None and (row := _common_row(value, topic, partition, offset, now, retention_days)) is not None:
        return row
    return _by_rules(value, topic=topic, partition=partition, offset=offset, timestamp_ms=timestamp_ms, now=now,
                     retention_days=retention_days)


def _by_rules(value: bytes | None, *, topic: str, partition: int, offset: int, timestamp_ms: int | None,
              now: datetime, retention_days: int) -> dict[str, Any]:
    """process_message by the event rules: every accepted form, every error worded."""
    if value is None:
        raise MessageInvalid({"non_field_errors": ["Empty message (no value)."]})
    data = parse_json(value)
    # The record time and the derived id (a SHA-1) only for messages that need them.
    record_time = None
    has_time = isinstance(data, dict) and (data.get("event_time") is not None or data.get("timestamp") is not None)
    if not has_time and timestamp_ms is not None and timestamp_ms >= 0:
        record_time = datetime.fromtimestamp(timestamp_ms // 1000, tz=UTC)
    has_id = isinstance(data, dict) and data.get("event_id") is not None
    try:
        return normalize_event(
            data,
            now=now,
            retention_days=retention_days,
            id_field="event_id",
            type_field="action",
            default_type=topic_event_type(topic),
            default_time=record_time,
            default_id=None if has_id else derived_event_id(topic, partition, offset),
        )
    except EventInvalid as e:
        raise MessageInvalid(e.errors) from None


def process_records(records: Mapping[object, list], *, batcher: Batcher, poison: PoisonPolicy, now: datetime,
                    retention_days: int = 365) -> int:
    """Each record of a poll (kafka-python's {partition: [ConsumerRecord]}) as a row or a dead
    letter in `batcher`; stops early when `poison` says the limit is reached. Returns how many
    records were taken (the rest are read again after the stop, uncommitted).

    The loop's hottest code (it runs on the thread that also decodes the records): a message in
    the common shape takes _common_row directly, and the rows of one partition's records go to
    the batcher at once (one offset and byte count per poll instead of per message)."""
    count = 0
    for messages in records.values():
        rows, size, last = [], 0, None
        for m in messages:
            count += 1
            value = m.value
            if value is not None and (row := _common_row(value, m.topic, m.partition, m.offset, now,
                                                         retention_days)) is not None:
                rows.append(row)
                size += len(value)
                last = m
                continue
            try:
                row = _by_rules(value, topic=m.topic, partition=m.partition, offset=m.offset, timestamp_ms=m.timestamp,
                                now=now, retention_days=retention_days)
            except MessageInvalid as e:
                batcher.add_dead_letter(DeadLetter(m.topic, m.partition, m.offset, m.timestamp,
                                                   m.key, m.value, e.errors))
                rows, size, last = _rows_to(batcher, poison, rows, size, last)
                poison.invalid()
                if poison.exceeded:
                    return count
            else:
                rows.append(row)
                size += len(value)
                last = m
        _rows_to(batcher, poison, rows, size, last)
    return count


def _rows_to(batcher: Batcher, poison: PoisonPolicy, rows: list, size: int, last: Any) -> tuple[list, int, None]:
    """Hand the rows read since the last call to the batcher (`last`: the record of the last
    one); valid messages break the poison streak. Returns the emptied accumulators."""
    if last is not None:
        batcher.add_rows(rows, topic=last.topic, partition=last.partition, offset=last.offset, size=size)
        poison.valid()
    return [], 0, None
