"""The pure message processor: bytes and coordinates in, an event row or every error out
(no broker, no database)."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from viewing.events import EVENT_TYPES
from viewing.kafka.processor import (
    KAFKA_EVENT_NAMESPACE,
    MessageInvalid,
    derived_event_id,
    process_message,
    topic_event_type,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
USER = "6f1c3c52-0d0a-4c3e-9d38-0b7e6d1b7a11"
MOVIE = "0a3a5a4e-5e9c-4f0e-8f0a-2b7b1c0d9e22"


def message(**fields):
    value = {"user_id": USER, "movie_id": MOVIE, "timestamp": "2026-11-28T10:30:15Z",
             "position_seconds": 42, "session_id": None}
    value.update(fields)
    return json.dumps({k: v for k, v in value.items() if v is not ...}).encode()


def process(value, topic="stream.start", partition=2, offset=17, timestamp_ms=None):
    if timestamp_ms is None:
        timestamp_ms = int((NOW - timedelta(minutes=1)).timestamp() * 1000)
    return process_message(value, topic=topic, partition=partition, offset=offset,
                           timestamp_ms=timestamp_ms, now=NOW, retention_days=365)


@pytest.mark.parametrize("spelling", sorted(EVENT_TYPES))
def test_every_action_spelling_decides_the_type_whatever_the_topic(spelling):
    row = process(message(action=spelling), topic="stream.progress")
    assert row["event_type"] == EVENT_TYPES[spelling]


@pytest.mark.parametrize(
    "topic, expected",
    [("stream.start", "start"), ("stream.progress", "progress"), ("stream.stop", "finish"),
     ("staging.stream.stop", "finish"), ("eu_stream_progress", "progress")],
)
def test_without_action_the_topic_decides(topic, expected):
    assert topic_event_type(topic) in EVENT_TYPES
    assert process(message(), topic=topic)["event_type"] == expected


def test_an_unknown_topic_without_action_is_an_error_naming_action_and_topic():
    with pytest.raises(MessageInvalid) as e:
        process(message(), topic="clicks")
    assert list(e.value.errors) == ["action"]
    assert '"clicks"' in e.value.errors["action"][0]


def test_a_valid_message_becomes_a_row():
    event_id = str(uuid.uuid4())
    row = process(message(action="stream.stop", event_id=event_id, position_seconds="300",
                          session_id=USER.upper(), metadata={"device": "tv"}))
    assert row == {
        "id": uuid.UUID(event_id),
        "user_id": uuid.UUID(USER),
        "movie_id": uuid.UUID(MOVIE),
        "event_type": "finish",
        "position_seconds": 300,
        "event_time": datetime(2026, 11, 28, 10, 30, 15),
        "session_id": uuid.UUID(USER),
        "metadata": '{"device":"tv"}',
    }


def test_without_event_id_the_id_is_uuid5_of_the_coordinates_and_stable():
    first = process(message(), topic="stream.start", partition=2, offset=17)
    again = process(message(), topic="stream.start", partition=2, offset=17)
    other = process(message(), topic="stream.start", partition=2, offset=18)
    assert first["id"] == again["id"] == uuid.uuid5(KAFKA_EVENT_NAMESPACE, "stream.start:2:17")
    assert first["id"] == derived_event_id("stream.start", 2, 17)
    assert other["id"] != first["id"]
    # The namespace is a published constant: changing it would double-count every replay.
    assert KAFKA_EVENT_NAMESPACE == uuid.uuid5(uuid.NAMESPACE_URL, "urn:viewing-analytics:kafka")


def test_without_a_time_the_record_timestamp_is_the_event_time():
    record_time = datetime(2026, 11, 27, 8, 15, 0, tzinfo=UTC)
    row = process(message(timestamp=...), timestamp_ms=int(record_time.timestamp() * 1000) + 999)
    assert row["event_time"] == datetime(2026, 11, 27, 8, 15, 0)


@pytest.mark.parametrize(
    "value, field, fragment",
    [
        (None, "non_field_errors", "Empty"),
        (b"\xff\xfe not utf-8", "non_field_errors", "UTF-8"),
        (b'{"user_id": ', "non_field_errors", "JSON"),
        (b"[1, 2]", "non_field_errors", "object"),
        (message(user_id="not-a-uuid"), "user_id", "UUID"),
        (message(movie_id=...), "movie_id", "required"),
        (message(action="pause"), "action", "not a valid event type"),
        (message(position_seconds=-1), "position_seconds", "between"),
        (message(timestamp="2026-11-28T10:30:15"), "timestamp", "time zone"),
        (message(timestamp="2027-01-01T00:00:00Z"), "timestamp", "future"),
        (message(timestamp="2024-01-01T00:00:00Z"), "timestamp", "retention"),
        (message(metadata=[1]), "metadata", "object"),
        (message(metadata={"x": "y" * 9000}), "metadata", "bytes"),
        (message(event_id="nope"), "event_id", "UUID"),
        (message(session_id=5), "session_id", "UUID"),
    ],
)
def test_each_kind_of_invalid_message_names_its_field(value, field, fragment):
    with pytest.raises(MessageInvalid) as e:
        process(value)
    assert field in e.value.errors
    assert fragment in " ".join(e.value.errors[field])


def test_every_error_of_a_message_is_reported_at_once():
    with pytest.raises(MessageInvalid) as e:
        process(message(user_id="x", movie_id="y", position_seconds=1.5))
    assert set(e.value.errors) == {"user_id", "movie_id", "position_seconds"}


# --- parse_json: orjson where it agrees with json, json for the rest -----------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from viewing.kafka.processor import parse_json  # noqa: E402

JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=25,
)


def by_json(value):
    """What the processor gave before orjson: json on the UTF-8 text, or its error."""
    try:
        return json.loads(value.decode("utf-8"))
    except UnicodeDecodeError:
        return {"non_field_errors": ["Not UTF-8 text."]}
    except ValueError as e:
        return {"non_field_errors": [f"Not valid JSON: {e}."]}


def answer(value):
    try:
        return parse_json(value)
    except MessageInvalid as e:
        return e.errors


def same(a, b):
    """Equal, and of the same types all the way down (1 == 1.0, but a float is not an int)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=False))
    return type(a) is type(b) and (a == b or (a != a and b != b))


@settings(max_examples=800, deadline=None)
@given(doc=JSON_VALUES, ascii_only=st.booleans(), mutation=st.sampled_from(
    [None, b"NaN", b"Infinity", b"1e999", b'"\\ud800"', b"\xff", b"\xef\xbb\xbf", b",", b"  ", b"\x00",
     b"123456789012345678901234", b"-9223372036854775809", b"18446744073709551616"]), at=st.integers(0, 400))
def test_parse_json_answers_as_json_does(doc, ascii_only, mutation, at):
    value = json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    if mutation is not None:
        at = min(at, len(value))
        value = value[:at] + mutation + value[at:]
    assert same(answer(value), by_json(value))


@pytest.mark.parametrize("number", [2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30])
def test_integers_beyond_64_bits_stay_integers(number):
    # orjson would make them floats: a message with one goes through json.
    assert same(parse_json(json.dumps({"position_seconds": number, "metadata": {"n": number}}).encode()),
                {"position_seconds": number, "metadata": {"n": number}})
    with pytest.raises(MessageInvalid) as e:
        process(message(position_seconds=number))
    assert e.value.errors == {"position_seconds": ["Must be between 0 and 4294967295."]}


def test_process_records_batches_rows_and_dead_letters_and_stops_at_the_poison_limit():
    from types import SimpleNamespace

    from viewing.kafka.batcher import Batcher
    from viewing.kafka.dlq import PoisonPolicy
    from viewing.kafka.processor import process_records

    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    good = json.dumps({"user_id": str(uuid.uuid4()), "movie_id": str(uuid.uuid4()), "action": "start",
                       "timestamp": "2026-11-27T11:00:00Z"}).encode()

    def record(offset, value):
        return SimpleNamespace(topic="stream.start", partition=0, offset=offset, timestamp=0, key=None, value=value)

    values = [good, b"bad", good, b"bad", b"bad", b"bad", good]
    batcher = Batcher(size=100, interval=1)
    policy = PoisonPolicy(limit=3, dlq_topic="dlq")
    taken = process_records({"tp": [record(i, v) for i, v in enumerate(values)]}, batcher=batcher, poison=policy,
                            now=now)
    assert taken == 6 and policy.exceeded  # the seventh is left for after the stop
    assert len(batcher.batch.rows) == 2 and [d.offset for d in batcher.batch.dead_letters] == [1, 3, 4, 5]
    assert batcher.batch.offsets == {("stream.start", 0): 6}



def test_process_records_gives_each_record_what_process_message_gives_it():
    """process_records takes the common shape's path and hands rows over per partition: every
    record still ends as process_message's row or its dead letter, with the offsets, bytes and
    poison streak a record-by-record pass gives."""
    from types import SimpleNamespace

    from viewing.kafka.batcher import Batcher
    from viewing.kafka.dlq import PoisonPolicy
    from viewing.kafka.processor import process_records

    values = [message(event_id=str(uuid.uuid4())), b"not json", None, message(user_id="nope"),
              message(action="stop"), message(timestamp="1700000000"), message(user_id=USER.upper()),
              message(timestamp="2026-11-28T10:30:15.5+02:00"), b"[]", message(metadata={"a": [1, 2.5e-7]})]
    records = {}
    for i, value in enumerate(values * 3):
        topic, partition = [("stream.start", 0), ("x.stream.stop", 4), ("stream.start", 1)][i % 3]
        records.setdefault((topic, partition), []).append(SimpleNamespace(
            topic=topic, partition=partition, offset=100 + i, timestamp=int(NOW.timestamp() * 1000) - 5000,
            key=b"k", value=value))
    batcher = Batcher(size=1000, interval=60)
    policy = PoisonPolicy(limit=100, dlq_topic="dlq")
    assert process_records(records, batcher=batcher, poison=policy, now=NOW) == len(values) * 3

    rows, letters, size, streak = [], [], 0, 0
    for messages in records.values():
        for m in messages:
            try:
                rows.append(process(m.value, topic=m.topic, partition=m.partition, offset=m.offset,
                                    timestamp_ms=m.timestamp))
                streak = 0
            except MessageInvalid as e:
                letters.append((m.topic, m.partition, m.offset, m.value, e.errors))
                streak += 1
            size += len(m.value or b"")
    batch = batcher.take()
    assert batch.rows == rows and len(rows) == 15
    assert [(d.topic, d.partition, d.offset, d.value, d.error) for d in batch.dead_letters] == letters
    assert batch.offsets == {key: messages[-1].offset + 1 for key, messages in records.items()}
    assert batch.bytes == size and policy.streak == streak == 0


def test_the_poison_streak_runs_across_partitions_and_a_valid_message_ends_it():
    from types import SimpleNamespace

    from viewing.kafka.batcher import Batcher
    from viewing.kafka.dlq import PoisonPolicy
    from viewing.kafka.processor import process_records

    def record(partition, offset, value):
        return SimpleNamespace(topic="stream.start", partition=partition, offset=offset, timestamp=0, key=None,
                               value=value)

    good = message(timestamp="2026-11-28T11:00:00Z")
    records = {0: [record(0, 0, b"bad"), record(0, 1, good), record(0, 2, b"bad")],
               1: [record(1, 0, b"bad"), record(1, 1, b"bad"), record(1, 2, good)]}
    batcher, policy = Batcher(size=100, interval=1), PoisonPolicy(limit=3, dlq_topic="dlq")
    assert process_records(records, batcher=batcher, poison=policy, now=NOW) == 5 and policy.exceeded
    batch = batcher.take()
    assert len(batch.rows) == 1 and [(d.partition, d.offset) for d in batch.dead_letters] == [(0, 0), (0, 2), (1, 0),
                                                                                                (1, 1)]
    # The partition-1 record after the stop is left unread: its offset is not covered.
    assert batch.offsets == {("stream.start", 0): 3, ("stream.start", 1): 2}


# --- The common shape, decoded by msgspec, gives the rules' row --------------------------------
from tests.viewing.test_events import ANY_UUID, mostly_common_events, raw_events  # noqa: E402
from tests.viewing.test_events import NOW as EVENTS_NOW  # noqa: E402
from viewing.kafka.processor import _by_rules, _common_row  # noqa: E402

KAFKA_FIELDS = {"id": "event_id", "event_type": "action"}


def by_rules(value, topic, timestamp_ms):
    try:
        return _by_rules(value, topic=topic, partition=1, offset=9, timestamp_ms=timestamp_ms, now=EVENTS_NOW,
                         retention_days=365)
    except MessageInvalid as e:
        return e.errors


@settings(max_examples=1500, deadline=None)
@given(data=st.one_of(mostly_common_events(), raw_events()), topic=st.sampled_from(["stream.stop", "x.start", "clicks"]),
       ascii_only=st.booleans(), repeated=st.one_of(st.none(), st.tuples(st.sampled_from(
           ["user_id", "event_id", "timestamp", "position_seconds", "metadata", "action"]), ANY_UUID)))
def test_the_msgspec_path_gives_the_rules_row_or_steps_aside(data, topic, ascii_only, repeated):
    data = {KAFKA_FIELDS.get(k, k): v for k, v in data.items()}  # the Kafka names
    value = json.dumps(data, ensure_ascii=ascii_only, default=str).encode("utf-8", "surrogatepass")
    if repeated is not None and value.endswith(b"}") and len(value) > 2:  # a key given twice: the last wins
        value = value[:-1] + b', "' + repeated[0].encode() + b'": ' + json.dumps(repeated[1], default=str).encode() + b"}"
    timestamp_ms = int((EVENTS_NOW - timedelta(minutes=2)).timestamp() * 1000)
    fast = _common_row(value, topic, 1, 9, EVENTS_NOW, 365)
    if fast is not None:
        assert fast == by_rules(value, topic, timestamp_ms)
    try:
        answer = process_message(value, topic=topic, partition=1, offset=9, timestamp_ms=timestamp_ms,
                                 now=EVENTS_NOW, retention_days=365)
    except MessageInvalid as e:
        answer = e.errors
    assert answer == by_rules(value, topic, timestamp_ms)


@pytest.mark.parametrize("variant", [
    {}, {"session_id": None}, {"event_id": None}, {"user_id": USER.upper()}, {"movie_id": MOVIE.replace("-", "")},
    {"metadata": {"device": "tv", "n": [1, 2.5, None, 10**30]}}, {"event_time": "2026-11-28T11:00:00+02:00"},
    {"position_seconds": None}, {"action": None},
])
def test_the_common_shape_takes_the_msgspec_path(variant):
    fields = {"event_id": str(uuid.uuid4()), "action": "stop", "session_id": str(uuid.uuid4()), **variant}
    value = message(**fields)
    fast = _common_row(value, "stream.start", 2, 17, NOW, 365)
    assert fast is not None
    assert fast == process(value) == _by_rules(value, topic="stream.start", partition=2, offset=17,
                                               timestamp_ms=0, now=NOW, retention_days=365)
