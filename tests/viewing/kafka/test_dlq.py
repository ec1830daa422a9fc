"""Dead letters against a real broker: every kind of invalid message reaches the dead-letter
topic with its original bytes and error, and a flood of them stops the loop (the policy)."""

import json
import random

import pytest

from tests.kafka_broker import TYPES, event, make_loop
from viewing.kafka.batcher import DeadLetter
from viewing.kafka.dlq import PoisonPolicy, dead_letter_headers
from viewing.kafka.errors import PoisonFlood

pytestmark = [pytest.mark.kafka]


INVALID = [
    # (value, the field its error names)
    (None, "non_field_errors"),
    (b"\xff not utf-8", "non_field_errors"),
    (b"{not json", "non_field_errors"),
    (b'"a string"', "non_field_errors"),
    ({"user_id": "nope"}, "user_id"),
    ({"movie_id": "nope"}, "movie_id"),
    ({"action": "rewind"}, "action"),
    ({"position_seconds": -5}, "position_seconds"),
    ({"timestamp": "2020-01-01T00:00:00Z"}, "timestamp"),
    ({"timestamp": "2999-01-01T00:00:00Z"}, "timestamp"),
    ({"metadata": "text"}, "metadata"),
    ({"event_id": "123"}, "event_id"),
    ({"session_id": "nope"}, "session_id"),
]


def test_each_kind_of_invalid_message_goes_to_the_dead_letter_topic_with_its_error(ch, kafka):
    rng = random.Random(11)
    sent = []
    for i, (change, field) in enumerate(INVALID):
        if isinstance(change, dict):
            value = json.dumps({**event(rng, action="start"), **change}).encode()
        else:
            value = change
        topic = kafka.topic(TYPES[i % 3])
        sent.append((kafka.produce(topic, value, key=f"k{i}".encode()), value, field))
        kafka.produce(topic, event(rng))  # valid neighbours keep flowing
    kafka.flush()

    stats = make_loop(kafka).run(exit_on_idle=1)

    assert stats["dead_lettered"] == len(INVALID)
    assert stats["stored"] == len(INVALID)
    letters = kafka.read(kafka.dlq, len(INVALID))
    by_source = {}
    for letter in letters:
        headers = {k: v.decode() for k, v in letter.headers}
        by_source[(headers["dlq.topic"], int(headers["dlq.partition"]), int(headers["dlq.offset"]))] = (
            letter, json.loads(headers["dlq.error"]))
    for future, value, field in sent:
        meta = future.get(timeout=10)
        letter, error = by_source[(meta.topic, meta.partition, meta.offset)]
        assert letter.value == value  # the original bytes, untouched
        assert letter.key == f"k{sent.index((future, value, field))}".encode()
        assert field in error and error[field]
    # Dead-lettered messages count as handled: their offsets are committed too.
    assert kafka.committed(kafka.group()) == kafka.produced_offsets()


def test_a_flood_of_invalid_messages_stops_the_loop_instead_of_dead_lettering_the_topic(ch, kafka):
    topic = kafka.topic("start")
    for i in range(50):
        kafka.produce(topic, b"garbage %d" % i, partition=0)
    kafka.flush()

    with pytest.raises(PoisonFlood, match="last 20 messages were all invalid"):
        make_loop(kafka, poison_limit=20).run(exit_on_idle=1)

    assert len(kafka.read(kafka.dlq, 20)) == 20
    assert kafka.committed(kafka.group()) == {(topic, 0): 20}  # the other 30 stay unread


def test_the_headers_say_why_and_where_from():
    letter = DeadLetter("stream.start", 2, 41, 1700000000000, b"k", b"{}", {"user_id": ["Must be a valid UUID."]})
    assert dict(dead_letter_headers(letter)) == {
        "dlq.error": b'{"user_id": ["Must be a valid UUID."]}',
        "dlq.topic": b"stream.start",
        "dlq.partition": b"2",
        "dlq.offset": b"41",
        "dlq.timestamp": b"1700000000000",
    }


def test_the_policy_counts_invalid_messages_in_a_row_and_a_valid_one_resets_it():
    policy = PoisonPolicy(limit=3, dlq_topic="stream.dlq")
    policy.invalid()
    policy.invalid()
    policy.valid()
    policy.invalid()
    policy.invalid()
    assert not policy.exceeded
    policy.invalid()
    assert policy.exceeded
    error = policy.error()
    assert isinstance(error, PoisonFlood) and error.fatal
    assert "last 3 messages were all invalid" in str(error) and "stream.dlq" in str(error)
