"""The batch endpoint's fast path: a body of events in the common shape decoded and typed in
one pass, and its rows; anything else goes through the event rules as before.

Why: for a 10,000-event batch, json.loads and normalize_event per item took ~75 ms of Python
(~7.5 µs an event), under the GIL that every request and the insert's encoding share. msgspec
decodes the whole array into typed structs — UUIDs parsed, integers and strings checked — in
~1 µs an event; what is left per event is the type's spelling, the time's bounds and the
metadata's text, by the same functions the rules use.

The fast path gives exactly the rows normalize_event gives, or nothing: a body that does not
decode into the common shape (another form of a valid value, an invalid one, not an array) is
parsed as JSON and checked by the rules, which decide and word every error; so is a batch one
of whose items fails a check here (a type spelled differently, a time out of bounds or given as
a number, metadata the rules would refuse). tests/viewing/test_batch_decode.py pins it: both
ways give the same rows for every shape, and every difference sends the batch to the rules.
msgspec reads the UUID forms it accepts (36 or 32 hex digits, any case) to the value the rules
read, takes the last of repeated keys and keeps integers of any size exact, as json does, and
refuses a float, a bool or a string where an integer belongs.
"""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from analytics_site.parsers import BoundedJSONParser, decodes_as_utf8

from .events import (
    EVENT_TYPES,
    MAX_POSITION,
    EventRow,
    common_time,
    parse_event_time,
    serialize_metadata,
)


class _CommonEvent(msgspec.Struct, gc=False):
    """One batch item in the shape clients send (docs/api.md, the event fields)."""

    user_id: uuid.UUID
    movie_id: uuid.UUID
    event_type: str
    id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    event_time: str | int | None = None  # ISO-8601, or epoch seconds (milliseconds)
    timestamp: str | int | None = None
    position_seconds: int | None = None
    metadata: dict | None = None


_COMMON_DECODER = msgspec.json.Decoder(list[_CommonEvent])


class CommonBatch(list):
    """A batch body decoded by the fast path: its items are _CommonEvent structs; `generic()`
    parses the body as JSON the usual way, for the rules."""

    def __init__(self, items, generic):
        super().__init__(items)
        self.generic = generic


def decode_common(body: bytes) -> list | None:
    """The items of a body in the common shape (a JSON array of _CommonEvent), else None."""
    try:
        return _COMMON_DECODER.decode(body)
    except (msgspec.MsgspecError, ValueError, RecursionError):  # ValueError: not UTF-8
        return None


def common_rows(items: list, *, now: datetime, retention_days: int) -> list[EventRow] | None:
    """normalize_event's rows for decoded items (`now` the time of receipt and the bounds'
    reference), or None when any item needs the rules."""
    default_moment = None
    rows = []
    append = rows.append
    for m in items:
        event_type = EVENT_TYPES.get(m.event_type)
        position = 0 if m.position_seconds is None else m.position_seconds
        if event_type is None or not 0 <= position <= MAX_POSITION:
            return None
        raw_time = m.event_time if m.event_time is not None else m.timestamp
        if type(raw_time) is str:
            if (moment := common_time(raw_time, now, retention_days)) is None:
                return None
        elif raw_time is not None:  # an integer: epoch seconds or milliseconds, by the rule itself
            try:
                moment = parse_event_time(raw_time, now=now, retention_days=retention_days)
            except ValueError:
                return None
        else:
            if default_moment is None:  # the time of receipt, by the rule that checks it
                try:
                    default_moment = parse_event_time(now, now=now, retention_days=retention_days)
                except ValueError:
                    return None
            moment = default_moment
        if m.metadata is None:
            metadata = "{}"
        else:
            try:
                metadata = serialize_metadata(m.metadata)
            except ValueError:
                return None
        append({
            "user_id": m.user_id,
            "movie_id": m.movie_id,
            "session_id": m.session_id,
            "event_type": event_type,
            "position_seconds": position,
            "event_time": moment,
            "metadata": metadata,
            "id": m.id if m.id is not None else uuid.uuid4(),
        })
    return rows


class BatchBody:
    """A batch request's body as read (size limit checked), not parsed yet: the engine path
    (viewing/batch_engine.py) reads `raw` itself; `decode()` parses it the Python way
    (EventBatchParser.parse_body: a CommonBatch, the JSON document, or ParseError)."""

    def __init__(self, raw: bytes, utf8: bool, decode: Callable[[], Any]) -> None:
        self.raw, self.utf8, self.decode = raw, utf8, decode


class EventBatchParser(BoundedJSONParser):
    """The batch endpoint's parser: the body as a BatchBody, whose decode() gives the fast
    path's CommonBatch for a body in the common shape, the JSON document otherwise
    (BoundedJSONParser: the same limits and errors)."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = self.read_body(stream, parser_context)
        return BatchBody(body, decodes_as_utf8(parser_context),
                         lambda: self.parse_body(body, media_type, parser_context))

    def parse_body(self, body: bytes, media_type=None, parser_context=None):
        items = decode_common(body) if decodes_as_utf8(parser_context) else None
        if items is None:
            return super().parse_body(body, media_type, parser_context)
        return CommonBatch(items, lambda: super(EventBatchParser, self).parse_body(body, media_type, parser_context))
