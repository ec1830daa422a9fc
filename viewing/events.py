"""The rules every way in shares (HTTP single, HTTP batch, Kafka): a raw event mapping in, a
storable row out, or every field error at once. Pure: no I/O, no Django database.

The finer points of the rules (docs/api.md, Events → Rules):
- UUIDs: 8-4-4-4-12 hex digits, any case, optionally in braces, or the 32 digits without
  dashes; stored and returned in canonical lower-case form. Anything else is rejected.
- event_time / timestamp: an ISO-8601 string with `Z` or an offset (a naive time is rejected:
  it would silently be read in some time zone), or epoch seconds as a number or a string of
  digits (milliseconds when > 10^11). Sub-second parts are dropped (second precision).
- position_seconds: an integer (or a string of digits); floats, booleans, NaN are rejected.
- Unknown fields are ignored, so producers can add fields without breaking ingestion.
- metadata: a JSON object, at most 8 KiB serialized and nested at most 32 levels (the object
  itself is level 1), so how deep a client may nest never depends on Python's recursion limit.
"""

import functools
import json
import math
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import orjson

EVENT_TYPES = {
    "start": "start", "stream.start": "start", "stream_start": "start",
    "progress": "progress", "stream.progress": "progress", "stream_progress": "progress", "progress_update": "progress",
    "finish": "finish", "stop": "finish", "stream.stop": "finish", "stream_stop": "finish",
}
MAX_POSITION = 4294967295
MAX_METADATA_BYTES = 8 * 1024
MAX_METADATA_DEPTH = 32
FUTURE_TOLERANCE = timedelta(minutes=5)
MILLISECONDS_ABOVE = 10**11

_UUID_RE = re.compile(
    r"^(?:\{)?([0-9a-fA-F]{8})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{4})-?([0-9a-fA-F]{12})(?:\})?$"
)
_CANONICAL_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DIGITS_RE = re.compile(r"^\d{1,20}$")
# One shared encoder: json.dumps builds a new one per call with these options (~1.5 µs).
_METADATA_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
# orjson writes _METADATA_ENCODER's text ~5x faster, but for floats below 1e-4 or with an
# exponent (`0.00001`, `1.5e-7` for `1e-05`, `1.5e-07`) and NaN/Infinity (null). Output with a
# digit before an `e`, `0.0000` or `null` anywhere, or that orjson refuses, is written by
# _METADATA_ENCODER instead: the stored text and every error stay the same (tested).
_ORJSON_DIFFERS = re.compile(rb"\d[eE]|0\.0000|null")
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


class EventRow(TypedDict):
    """One event as stored: the columns of `viewing_events` but `created_at`."""

    id: uuid.UUID
    user_id: uuid.UUID
    movie_id: uuid.UUID
    session_id: uuid.UUID | None
    event_type: str
    position_seconds: int
    event_time: datetime  # naive UTC, second precision
    metadata: str  # compact JSON text of an object


class EventInvalid(ValueError):
    """An event broke one or more rules; `errors` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items()))


_new_object, _set_slot = object.__new__, object.__setattr__


def canonical_uuid(text: str) -> uuid.UUID:
    """uuid.UUID(text) for a text _CANONICAL_UUID_RE matched, ~0.5 µs faster: the same object
    (`int` and `is_safe` set as uuid.UUID.__init__ sets them), the form not checked again."""
    value = _new_object(uuid.UUID)
    _set_slot(value, "int", int(text.replace("-", ""), 16))
    _set_slot(value, "is_safe", uuid.SafeUUID.unknown)
    return value


def parse_uuid(value: object) -> uuid.UUID:
    """A UUID from its text form (see the module docstring), or ValueError."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        raise ValueError("Must be a UUID string.")
    if _CANONICAL_UUID_RE.fullmatch(value):
        # The form producers send: no regex groups to join (Kafka path).
        return canonical_uuid(value)
    m = _UUID_RE.match(value)
    if not m or (value.startswith("{") != value.endswith("}")):
        raise ValueError("Must be a valid UUID.")
    return uuid.UUID("".join(m.groups()))


def parse_event_time(value: object, *, now: datetime, retention_days: int) -> datetime:
    """A naive UTC datetime (second precision) from ISO-8601 or epoch seconds/milliseconds,
    inside [now - retention_days, now + 5 minutes]; ValueError otherwise."""
    if isinstance(value, bool) or value is None:
        raise ValueError("Must be an ISO-8601 time with Z or an offset, or epoch seconds.")
    if isinstance(value, str) and _DIGITS_RE.match(value.strip()):
        value = int(value.strip())
    if isinstance(value, datetime):  # a default the service supplies (receipt, record time)
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise ValueError("Must be a finite, non-negative number of epoch seconds.")
        seconds = value / 1000 if value > MILLISECONDS_ABOVE else value
        try:
            moment = datetime.fromtimestamp(int(seconds), tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError("Is out of range.") from None
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("Must be an ISO-8601 time with Z or an offset, or epoch seconds.") from None
        if moment.tzinfo is None:
            raise ValueError("Must include a time zone: Z or an offset such as +02:00.")
        moment = moment.astimezone(UTC)
    else:
        raise ValueError("Must be an ISO-8601 time with Z or an offset, or epoch seconds.")
    moment = moment.replace(microsecond=0, tzinfo=None)
    now = now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now
    if moment > now + FUTURE_TOLERANCE:
        raise ValueError("Is more than 5 minutes in the future.")
    if moment < now - timedelta(days=retention_days):
        raise ValueError(f"Is older than the {retention_days}-day retention.")
    return moment


def parse_position(value: object) -> int:
    """A playback position 0 … MAX_POSITION from an integer or a string of digits; ValueError otherwise."""
    if isinstance(value, str) and _DIGITS_RE.match(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("Must be an integer.")
    if not 0 <= value <= MAX_POSITION:
        raise ValueError(f"Must be between 0 and {MAX_POSITION}.")
    return value


def serialize_metadata(value: object) -> str:
    """The metadata object as compact JSON text, at most 8 KiB; ValueError otherwise."""
    if value is None:
        return "{}"
    if not isinstance(value, dict):
        raise ValueError("Must be a JSON object.")
    try:
        data = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: _METADATA_ENCODER decides and words it
        data = None
    if data is not None and not _ORJSON_DIFFERS.search(data):
        text, size = data.decode(), len(data)
    else:
        try:
            text = _METADATA_ENCODER.encode(value)
        except (ValueError, RecursionError):
            raise ValueError("Must be JSON without NaN or Infinity, nested at most a few hundred levels.") from None
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise ValueError("Must not contain unpaired UTF-16 surrogates.") from None
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"Must be at most {MAX_METADATA_BYTES} bytes once serialized.")
    # Every level of nesting opens with a `{` or `[`, so text with no more of them than the
    # limit cannot be too deep: the walk is only needed for the rare larger objects.
    if text.count("{") + text.count("[") > MAX_METADATA_DEPTH and _nesting_exceeds(value, MAX_METADATA_DEPTH):
        raise ValueError(f"Must be nested at most {MAX_METADATA_DEPTH} levels deep.")
    return text


def _nesting_exceeds(value: object, limit: int) -> bool:
    """Whether objects/arrays inside `value` go deeper than `limit` levels (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def normalize_event(
    data: Any,
    *,
    now: datetime,
    retention_days: int = 365,
    id_field: str = "id",
    type_field: str = "event_type",
    default_type: str | None = None,
    default_time: datetime | None = None,
    default_id: uuid.UUID | None = None,
) -> EventRow:
    """Check one raw event and return the row to store (an EventRow).

    `id_field`/`type_field` name the fields of this way in (HTTP: id, event_type; Kafka:
    event_id, action). `default_type` is used when the type field is absent (Kafka: the
    topic), `default_time` when no time is given (HTTP: receipt; Kafka: record timestamp),
    `default_id` when no id is given. Raises EventInvalid with every field's errors.
    """
    args = (data, now, retention_days, id_field, type_field, default_type, default_time, default_id)
    row = _normalize_common(*args)
    return row if row is not None else _normalize_full(*args)


def _normalize_full(data, now, retention_days, id_field, type_field, default_type, default_time, default_id):
    """normalize_event by the full rules: every accepted form, every error."""
    if not isinstance(data, dict):
        raise EventInvalid({"non_field_errors": ["Must be a JSON object."]})
    errors = {}
    row = {}

    def check(field, parse, value):
        try:
            return parse(value)
        except ValueError as e:
            errors.setdefault(field, []).append(str(e))
            return None

    for field in ("user_id", "movie_id"):
        if data.get(field) is None:
            errors[field] = ["This field is required."]
        else:
            row[field] = check(field, parse_uuid, data[field])

    session = data.get("session_id")
    row["session_id"] = None if session is None else check("session_id", parse_uuid, session)

    raw_type = data.get(type_field)
    if raw_type is None:
        raw_type = default_type
    if raw_type is None:
        errors[type_field] = ["This field is required."]
    elif not isinstance(raw_type, str) or raw_type.strip().lower() not in EVENT_TYPES:
        errors[type_field] = [
            f'"{str(raw_type)[:64]}" is not a valid event type; use one of: {", ".join(EVENT_TYPES)}.'
        ]
    else:
        row["event_type"] = EVENT_TYPES[raw_type.strip().lower()]

    position = data.get("position_seconds")
    row["position_seconds"] = 0 if position is None else check("position_seconds", parse_position, position)

    time_field = "event_time" if data.get("event_time") is not None else "timestamp"
    raw_time = data.get(time_field)
    if raw_time is None:
        row["event_time"] = check(
            "event_time",
            lambda v: parse_event_time(v, now=now, retention_days=retention_days),
            default_time or now,
        )
    else:
        row["event_time"] = check(
            time_field, lambda v: parse_event_time(v, now=now, retention_days=retention_days), raw_time
        )

    row["metadata"] = check("metadata", serialize_metadata, data.get("metadata"))

    raw_id = data.get(id_field)
    if raw_id is None:
        row["id"] = default_id if default_id is not None else uuid.uuid4()
    else:
        row["id"] = check(id_field, parse_uuid, raw_id)

    if errors:
        raise EventInvalid(errors)
    return row


# --- The fast path ---------------------------------------------------------------------------
# Nearly every event comes in one shape: canonical lower-case UUIDs, a type spelled as listed,
# an integer position, an ISO-8601 time, a small metadata object. For it the generic checking
# above (a closure and a try per field, the time's bounds per event) is most of ingestion's
# cost. _normalize_common checks each field in its common form only, with one cheap test, and
# returns the same row; a field in any other form, valid or not, makes it return None and the
# full rules decide and word the errors (tests/viewing/test_events.py: both agree).

# An ISO-8601 time as producers write it (fromisoformat then parses it, offset and all).
_COMMON_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")


@functools.lru_cache(maxsize=16)
def _time_bounds(now: datetime, retention_days: int) -> tuple[datetime, datetime]:
    """The accepted event times [oldest, latest] as naive UTC, for a given `now` (a Kafka poll
    or an HTTP batch shares one)."""
    now = now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now
    return now - timedelta(days=retention_days), now + FUTURE_TOLERANCE


def common_time(text: str, now: datetime, retention_days: int) -> datetime | None:
    """An ISO-8601 time as producers write it, as naive UTC inside the accepted bounds; else None."""
    if not _COMMON_TIME_RE.fullmatch(text):
        return None
    utc = text[-1] == "Z"  # then its first 19 characters are the naive UTC second: ~1 µs less
    try:
        moment = datetime.fromisoformat(text[:19] if utc else text)
    except ValueError:
        return None
    if not utc:
        moment = (moment.astimezone(UTC) if moment.utcoffset() else moment).replace(microsecond=0, tzinfo=None)
    oldest, latest = _time_bounds(now, retention_days)
    return moment if oldest <= moment <= latest else None


def _common_uuid(value: object) -> uuid.UUID | None:
    """A UUID from its canonical text, or None for any other value."""
    if isinstance(value, str) and _CANONICAL_UUID_RE.fullmatch(value):
        return canonical_uuid(value)
    return None


# Users, movies and sessions recur from event to event (a session's heartbeats, a small
# catalogue): immutable UUIDs, so recurring texts share one parsed object (~5 MB at most).
# Event ids never recur and use _common_uuid, so they do not push the others out.
_recurring_uuid = functools.lru_cache(maxsize=16384)(_common_uuid)


def _normalize_common(data, now, retention_days, id_field, type_field, default_type, default_time, default_id):
    """normalize_event's row for an event whose every field is in its common form, else None."""
    if type(data) is not dict:
        return None
    user_id = data.get("user_id")
    movie_id = data.get("movie_id")
    if type(user_id) is not str or type(movie_id) is not str:  # (lru_cache needs hashable keys)
        return None
    user_id = _recurring_uuid(user_id)
    movie_id = _recurring_uuid(movie_id)
    if user_id is None or movie_id is None:
        return None

    session = data.get("session_id")
    if session is not None:
        session = _recurring_uuid(session) if type(session) is str else None
        if session is None:
            return None

    raw_id = data.get(id_field)
    if raw_id is None:
        event_id = default_id if default_id is not None else uuid.uuid4()
    elif (event_id := _common_uuid(raw_id)) is None:
        return None

    raw_type = data.get(type_field)
    if raw_type is None:
        raw_type = default_type
    if type(raw_type) is not str or (event_type := EVENT_TYPES.get(raw_type)) is None:
        return None

    position = data.get("position_seconds")
    if position is None:
        position = 0
    elif type(position) is not int or not 0 <= position <= MAX_POSITION:
        return None

    raw_time = data.get("event_time")
    if raw_time is None:
        raw_time = data.get("timestamp")
    if type(raw_time) is str:
        if (moment := common_time(raw_time, now, retention_days)) is None:
            return None
    elif raw_time is None:
        # The receipt or record time: a datetime, checked by the full rule (no message to parse).
        try:
            moment = parse_event_time(default_time or now, now=now, retention_days=retention_days)
        except ValueError:
            return None
    else:
        return None

    metadata = data.get("metadata")
    if metadata is None:
        metadata = "{}"
    else:
        try:
            metadata = serialize_metadata(metadata)
        except ValueError:
            return None

    return {
        "user_id": user_id,
        "movie_id": movie_id,
        "session_id": session,
        "event_type": event_type,
        "position_seconds": position,
        "event_time": moment,
        "metadata": metadata,
        "id": event_id,
    }
