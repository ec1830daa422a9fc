"""The consumer's engine path (viewing/kafka/engine_path.py) stores exactly the rows the rules
give (process_message), or declines: every message below is staged by the engine, stored, and
its stored row compared with process_message's for the same record; the messages the rules
must decide are declined. The messages in the common shape must be taken by the engine."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from kafka.consumer.fetcher import ConsumerRecord

from tests.conftest import query
from viewing.engine_store import staged_store
from viewing.kafka.engine_path import stage_records
from viewing.kafka.processor import MessageInvalid, process_message

NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
HOUR_AGO = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
MOVIE = "5f0c1a5e-8f43-4c54-9a1e-6a4f1b2c3d4e"


def message(**fields):
    """A message in the common shape, changed by `fields` (None: the key left out)."""
    base = {"event_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "movie_id": MOVIE, "action": "start",
            "position_seconds": 42, "event_time": HOUR_AGO, "session_id": str(uuid.uuid4()),
            "metadata": {"device": "tv", "quality": "1080p"}}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


def record(value, *, topic="stream.start", partition=3, offset=7, timestamp=None):
    ms = int((NOW - timedelta(minutes=30)).timestamp() * 1000) if timestamp is None else timestamp
    return ConsumerRecord(topic, partition, 0, offset, ms, 0, None, value, [], None, -1,
                          -1 if value is None else len(value), -1)


TAKEN = {
    "plain": [record(message())],
    "no event id: derived from the record's place": [record(message(event_id=None), offset=1234567)],
    "several, offsets with gaps": [record(message(event_id=None), offset=o) for o in (10, 11, 15, 900)],
    "no action: the topic's type": [record(message(action=None), topic="staging.stream_stop")],
    "action spellings": [record(message(action=a), offset=i) for i, a in enumerate(["stream.progress", "stop"])],
    "no time: the timestamp field": [record(message(event_time=None, timestamp=HOUR_AGO))],
    "no time at all: the record's timestamp": [record(message(event_time=None), timestamp=1_000 * int(
        (NOW - timedelta(days=3)).timestamp()) + 999)],
    "epoch seconds and a string of digits": [record(message(event_time=int(NOW.timestamp()) - 5)),
                                             record(message(event_time=str(int(NOW.timestamp()) - 9)), offset=8)],
    "time with an offset": [record(message(event_time=NOW.strftime("%Y-%m-%dT%H:%M:%S.25+03:00")))],
    "no position, session or metadata": [record(message(position_seconds=None, session_id=None, metadata=None))],
    "position as a string of digits": [record(message(position_seconds="17"))],
    "metadata spaced": [record(b'{"user_id": "' + str(uuid.uuid4()).encode() + b'", "movie_id": "' + MOVIE.encode()
                               + b'", "event_time": "' + HOUR_AGO.encode() + b'", "metadata": { "a" : [1, "x"] }}')],
}

DECLINED = {
    "empty value": [record(None)],
    "not JSON": [record(b"{nope")],
    "not UTF-8": [record(message(action="start").replace(b'"start"', b'"st\xffrt"'))],
    "not an object": [record(b"[1, 2]")],
    "two objects in one value": [record(message() + message())],
    "unknown action": [record(message(action="pause"))],
    "unknown topic, no action": [record(message(action=None), topic="events")],
    "no time and no record timestamp": [record(message(event_time=None), timestamp=-1)],
    "time in the future": [record(message(event_time=(NOW + timedelta(minutes=6)).strftime("%Y-%m-%dT%H:%M:%SZ")))],
    "uuid in braces": [record(message(user_id="{" + str(uuid.uuid4()) + "}"))],
    "metadata float": [record(message(metadata={"bitrate": 4.5}))],
    "metadata nested": [record(message(metadata={"a": {"b": 1}}))],
    "one bad among good": [record(message(), offset=1), record(message(position_seconds=-1), offset=2)],
}

COLUMNS = ("id", "user_id", "movie_id", "session_id", "event_type", "position_seconds", "event_time", "metadata")


def by_rules(r):
    try:
        row = process_message(r.value, topic=r.topic, partition=r.partition, offset=r.offset,
                              timestamp_ms=r.timestamp, now=NOW)
    except MessageInvalid as e:
        return e.errors
    return tuple(row[c] for c in COLUMNS)


@pytest.mark.parametrize("name", list(TAKEN))
def test_the_engine_stores_the_rules_rows(ch, name):
    records = TAKEN[name]
    staged = stage_records(records, topic=records[0].topic, partition=records[0].partition, now=NOW,
                           retention_days=365)
    assert staged is not None, "the engine should take these messages"
    try:
        assert staged_store([staged], path="kafka") == len(records)
    finally:
        staged.close()
    stored = query(f"SELECT {', '.join(COLUMNS)} FROM viewing_events")
    assert sorted(stored) == sorted(by_rules(r) for r in records)


@pytest.mark.parametrize("name", list(DECLINED))
def test_the_engine_leaves_every_other_message_to_the_rules(ch, name):
    records = DECLINED[name]
    staged = stage_records(records, topic=records[0].topic, partition=records[0].partition, now=NOW,
                           retention_days=365)
    assert staged is None
    assert query("SELECT count() FROM viewing_events") == [(0,)]
