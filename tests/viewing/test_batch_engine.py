"""The batch endpoint's engine path (viewing/batch_engine.py) answers and stores exactly what
the Python rules do: every body below is sent once with ENGINE_CHECKS on and once off,
and the status, the answer and the stored rows must be the same. The bodies in the common
shape must be taken by the engine (counted), so the comparison cannot pass by the engine
declining everything."""

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError, connections

from analytics_site.metrics import BATCHES_CHECKED
from tests.conftest import query
from viewing import batch_engine, clock, services
from viewing.batch_engine import stage_batch
from viewing.engine_store import staged_store

BATCH = "/api/v1/analytics/events/batch"
MOVIE = "5f0c1a5e-8f43-4c54-9a1e-6a4f1b2c3d4e"
SESSION = "0b7e4a3c-2d1f-4e5a-8b9c-1d2e3f4a5b6c"
# The service clock's now (whole seconds); the bounds are now - 365 days and now + 5 minutes.
# Tomorrow noon: an event at the retention bound (now - 365 days) is then still inside the
# tables' TTL, which counts from the real time, whatever the hour the tests run at.
NOW = (datetime.now(UTC) + timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)


@pytest.fixture(autouse=True)
def engine_tried():
    """Each test starts with the engine tried on the first batch (no skips left by another)."""
    batch_engine.backoff = batch_engine._Backoff()


def iso(moment, suffix="Z"):
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + suffix


def item(**fields):
    """A valid event in the common shape, changed by `fields` (None: the key left out);
    USER and EVID are replaced by a fresh id on each way."""
    base = {"id": "EVID", "user_id": "USER", "movie_id": MOVIE, "session_id": SESSION, "event_type": "start",
            "position_seconds": 42, "event_time": iso(NOW - timedelta(hours=1)),
            "metadata": {"device": "tv", "quality": "1080p"}}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def body(*items):
    return json.dumps(list(items), ensure_ascii=False)


# The engine must take these (the shape producers send).
TAKEN = {
    "plain": body(item()),
    "several": body(item(), item(id="EVID2", event_type="finish", position_seconds=0)),
    "spellings": body(*(item(id=f"EVID{i}", event_type=t) for i, t in
                        enumerate(["stream.start", "stream_stop", "stop", "progress_update", "stream.progress"]))),
    "uuids upper case": body(item(movie_id=MOVIE.upper(), session_id=SESSION.upper())),
    "uuids of 32 digits": body(item(movie_id=MOVIE.replace("-", ""))),
    "no id": body(item(id=None), item(id=None)),
    "null id and session": '[{"id": null, "user_id": "USER", "movie_id": "MOVIE", "session_id": null,'
                           ' "event_type": "start"}]',
    "no session, no time, no position, no metadata": body(item(session_id=None, event_time=None,
                                                                position_seconds=None, metadata=None)),
    "metadata null": body(item(metadata=None) | {"metadata": None}),
    "metadata empty": body(item(metadata={})),
    "metadata flat of every kind": body(item(metadata={"s": "é/ü 🎬", "n": -7, "z": -0, "b": True, "f": False,
                                                       "x": None, "a": [1, "2", [3, [4]], [], True]})),
    "time with fraction": body(item(event_time=iso(NOW - timedelta(hours=1), ".123456Z"))),
    "time with offsets": body(item(event_time=iso(NOW, "+05:30")), item(id="EVID2", event_time=iso(NOW, "-00:00")),
                              item(id="EVID3", event_time=iso(NOW - timedelta(hours=9), "-04:45"))),
    "time as timestamp": body(item(event_time=None, timestamp=iso(NOW - timedelta(minutes=3)))),
    "time null, timestamp given": body(item(event_time=None) | {"event_time": None,
                                                                "timestamp": iso(NOW - timedelta(days=2))}),
    "epoch seconds and milliseconds": body(item(event_time=int(NOW.timestamp()) - 60),
                                           item(id="EVID2", event_time=int(NOW.timestamp() * 1000) - 1)),
    "time at the future bound": body(item(event_time=iso(NOW + timedelta(minutes=5)))),
    "time at the retention bound": body(item(event_time=iso(NOW - timedelta(days=365)))),
    "metadata escaped plain letter": '[{"user_id": "USER", "movie_id": "MOVIE", "event_type": "start",'
                                     ' "metadata": {"s": "\\u00e9"}}]',
    "metadata 32 levels": body(item(metadata={"a": json.loads("[" * 31 + "]" * 31)})),
    "metadata floats in Python's form": body(item(metadata={"bitrate": 4.5, "fps": 29.97, "v": -0.0001,
                                                            "w": [0.30000000000001, 12345678901234.5], "s": "1.0"})),
    "metadata floats with trailing zeros": '[{"user_id": "USER", "movie_id": "MOVIE", "event_type": "start",'
                                           ' "metadata": {"a": 5.50, "b": [0.1000]}}]',
    "position bounds": body(item(position_seconds=0), item(id="EVID2", position_seconds=4294967295)),
    "unknown fields": body(item(player="web", extra={"deep": [1, {"x": 2}]})),
    "whitespace around": "\n  " + body(item()) + " \n",
    # Digits as a string are what the rules accept for a position or an epoch time.
    "time epoch as a string": body(item(event_time=str(int(NOW.timestamp())))),
    "position a string of digits": body(item(position_seconds="42")),
    "metadata spaced and escaped plainly": '[{"user_id": "USER", "movie_id": "MOVIE", "event_type": "start",'
                                           ' "metadata": { "p" : "a\\/b" , "n" : [ 1 , 2 ] }}]',
    "repeated key in a nested unknown field": '[{"user_id": "USER", "movie_id": "MOVIE", "event_type": "start",'
                                              ' "other": {"k": 1, "k": 2}}]',
}

# The rules decide these: the engine path must decline them (or refuse the same way).
DECLINED = {
    "uuid in braces": body(item(movie_id="{" + MOVIE + "}")),
    "uuid half dashed": body(item(movie_id=MOVIE.replace("-", "", 2))),
    "uuid invalid": body(item(movie_id="not-a-uuid")),
    "user id missing": body(item(user_id=None)),
    "user id a number": body(item(user_id=5)),
    "type unknown": body(item(event_type="pause")),
    "type in capitals": body(item(event_type="START")),
    "type missing": body(item(event_type=None)),
    "time naive": body(item(event_time=iso(NOW, ""))),
    "time lower-case z": body(item(event_time=iso(NOW - timedelta(hours=1), "z"))),
    "time offset 24 hours": body(item(event_time=iso(NOW, "+24:00"))),
    "time offset minutes 60": body(item(event_time=iso(NOW, "+01:60"))),
    "time seven fraction digits": body(item(event_time=iso(NOW - timedelta(hours=1), ".1234567Z"))),
    "time February 30": body(item(event_time="2026-02-30T10:00:00Z")),
    "time hour 24": body(item(event_time=NOW.strftime("%Y-%m-%dT24:00:00Z"))),
    "time past the future bound": body(item(event_time=iso(NOW + timedelta(minutes=5, seconds=1)))),
    "time past the retention bound": body(item(event_time=iso(NOW - timedelta(days=365, seconds=1)))),
    "time epoch negative": body(item(event_time=-5)),
    "time epoch as a float": body(item(event_time=NOW.timestamp())),
    "time a bool": body(item(event_time=True)),
    "position negative": body(item(position_seconds=-1)),
    "position too large": body(item(position_seconds=4294967296)),
    "position a float": body(item(position_seconds=42.0)),
    "position a bool": body(item(position_seconds=True)),
    "metadata nested object": body(item(metadata={"a": {"b": 1}})),
    "metadata float of 16 digits": body(item(metadata={"n": 1234567890.123456})),
    "metadata float below 0.0001": '[{"user_id": "USER", "movie_id": "MOVIE", "event_type": "start",'
                                   ' "metadata": {"n": 0.00009}}]',
    "metadata floats, one integral": body(item(metadata={"a": 4.5, "b": 3.0})),
    "metadata integral float": body(item(metadata={"bitrate": 4.0})),
    "metadata exponent": '[{"user_id": "USER", "movie_id": "MOVIE", "event_type": "start", "metadata": {"n": 2e3}}]',
    "metadata big integer": body(item(metadata={"n": 12345678901234567890123})),
    "metadata escapes": body(item(metadata={"s": "a\nb", "q": 'say "hi"', "u": "\u2028"})),
    "metadata repeated key": '[{"user_id": "USER", "movie_id": "MOVIE", "event_type": "start",'
                             ' "metadata": {"a": 1, "a": 2}}]',
    "metadata too large": body(item(metadata={"s": "x" * 8200})),
    "metadata 33 levels": body(item(metadata={"a": json.loads("[" * 32 + "]" * 32)})),
    "metadata an array": body(item(metadata=[1, 2])),
    "metadata a string": body(item(metadata="x")),
    "metadata a string that reads as an object": body(item(metadata='{"a":1}')),
    "metadata under an escaped key, as a string": '[{"user_id": "USER", "movie_id": "MOVIE", "event_type": "start",'
                                                  ' "met\\u0061data": "{}"}]',
    "uuid a number of 32 digits": '[{"user_id": "USER", "movie_id": 12345678901234567890123456789012,'
                                  ' "event_type": "start"}]',
    "id and session numbers of 32 digits": '[{"id": 12345678901234567890123456789012, "user_id": "USER",'
                                           ' "movie_id": "MOVIE", "session_id": 98765432109876543210987654321098,'
                                           ' "event_type": "start"}]',
    # Valid, but read the same as a number would be: the rules take it.
    "uuid a string of 32 decimal digits": body(item(movie_id="12345678901234567890123456789012")),
    "not UTF-8": body(item(metadata={"s": "a\udcffb"})),  # sent as the bytes ED B3 BF
    "lone surrogate": '[{"user_id": "USER", "movie_id": "MOVIE", "event_type": "start", "metadata": {"s": "\\ud800"}}]',
    "repeated top-level key": '[{"user_id": "USER", "movie_id": "MOVIE", "event_type": "start", "event_type": "finish"}]',
    "an item not an object": "[" + body(item())[1:-1] + ", 5]",
    "not an array": json.dumps(item()),
    "empty array": "[]",
    "NaN": '[{"user_id": "USER", "movie_id": "MOVIE", "event_type": "start", "metadata": {"n": NaN}}]',
    "trailing comma": "[" + body(item())[1:-1] + ",]",
    "missing comma": "[" + body(item())[1:-1] + " " + body(item(id="EVID2"))[1:-1] + "]",
    "trailing garbage": body(item()) + "x",
    "leading zero": '[{"user_id": "USER", "movie_id": "MOVIE", "event_type": "start", "position_seconds": 042}]',
    "deep unknown field": '[{"user_id": "USER", "movie_id": "MOVIE", "event_type": "start", "x": ' + "[" * 2000 + "]" * 2000 + "}]",
    "same id twice": body(item(), item(position_seconds=7)),
}


def test_the_engines_uuid_check_takes_the_forms_it_should_and_nothing_else(ch):
    """STAGE checks a UUID field with the engine's own parser (engine_stage._uuid_text): it must
    take exactly the texts _UUID describes, but 32 decimal digits, and read them as the rules
    do. Valid ids with one or two characters changed, and the forms around them."""
    import random
    import re

    from viewing.engine_stage import _UUID, _uuid_text
    from viewing.events import parse_uuid

    rng = random.Random(16)
    texts = ["{" + MOVIE + "}", "urn:uuid:" + MOVIE, MOVIE.replace("-", "", 2), MOVIE + "0", MOVIE[:-1], "-" * 36,
             "12345678901234567890123456789012", "1234567890123456789012345678901a", "0x" + MOVIE.replace("-", "")[2:]]
    for _ in range(3000):
        text = list(rng.choice([MOVIE, MOVIE.upper(), MOVIE.replace("-", ""), str(uuid.uuid4())]))
        for _ in range(rng.randint(1, 2)):
            text[rng.randrange(len(text))] = rng.choice("0123456789abcdefABCDEFgG-_ {}x+é")
        texts.append("".join(text))
    rows = query(f"SELECT x, {_uuid_text('x')}, toString(toUUIDOrNull(x)) FROM (SELECT arrayJoin(%(xs)s) AS x)",
                 {"xs": texts})
    assert len(rows) == len(texts)
    taken = 0
    for text, ok, value in rows:
        expected = bool(re.fullmatch(_UUID, text)) and not text.isdigit()
        assert bool(ok) == expected, text
        if ok:
            taken += 1
            assert value == str(parse_uuid(text)), text
    assert taken > 500  # the mutations keep many valid


def send(client, text, engine):
    """Post `text` (USER/EVID* replaced by fresh ids); the answer, the stored rows with the
    fresh ids named back, and whether the engine took it."""
    ids = {name: str(uuid.uuid4()) for name in ("EVID3", "EVID2", "EVID1", "EVID0", "EVID4", "EVID", "USER")}
    text = text.replace('"MOVIE"', f'"{MOVIE}"')
    for name, value in ids.items():
        text = text.replace(name, value)
    before = BATCHES_CHECKED.labels("engine")._value.get()
    with clock.frozen(NOW):
        from django.test import override_settings
        with override_settings(ENGINE_CHECKS=engine):
            response = client.post(BATCH, text.encode("utf-8", "surrogatepass"), content_type="application/json")
    taken = BATCHES_CHECKED.labels("engine")._value.get() > before
    names = {v: k for k, v in ids.items()}
    rows = query("SELECT toString(id), toString(movie_id), toString(session_id), event_type, position_seconds, "
                 "event_time, metadata FROM viewing_events WHERE user_id = toUUID(%(u)s)", {"u": ids["USER"]})
    rows = sorted((names.get(r[0], "random id"), *r[1:]) for r in rows)
    return response.status_code, response.content.decode(), rows, taken


@pytest.mark.parametrize("name", list(TAKEN))
def test_the_engine_stores_what_the_rules_store(ch, client, name):
    ruled = send(client, TAKEN[name], engine=False)
    engine = send(client, TAKEN[name], engine=True)
    assert ruled[0] == 201 and ruled[3] is False
    assert engine[3] is True, "the engine should take this body"
    assert engine[:3] == ruled[:3]


@pytest.mark.parametrize("name", list(DECLINED))
def test_the_engine_leaves_every_other_body_to_the_rules(ch, client, name):
    ruled = send(client, DECLINED[name], engine=False)
    engine = send(client, DECLINED[name], engine=True)
    assert engine[3] is False, "the rules should decide this body"
    assert engine[:3] == ruled[:3]


def test_a_stored_id_and_a_repeat_across_batches_are_stored_once(ch, client):
    first = [dict(item(), user_id=str(uuid.uuid4()), id=str(uuid.uuid4())) for _ in range(3)]
    again = first[1:] + [dict(first[0], id=str(uuid.uuid4()))]
    with clock.frozen(NOW):
        assert client.post(BATCH, json.dumps(first), content_type="application/json").status_code == 201
        response = client.post(BATCH, json.dumps(again), content_type="application/json")
    assert response.status_code == 201 and response.json() == {"accepted": 3}
    assert query("SELECT count(), uniqExact(id) FROM viewing_events") == [(4, 4)]


def test_an_erased_viewers_events_are_acknowledged_and_not_stored(ch, client):
    erased, kept = str(uuid.uuid4()), str(uuid.uuid4())
    with connections["clickhouse"].cursor() as cursor:
        cursor.execute("INSERT INTO suppressed_users (user_id, suppressed_at) VALUES", [(uuid.UUID(erased), 0)])
    items = [dict(item(), id=str(uuid.uuid4()), user_id=u) for u in (erased, kept, erased)]
    before = BATCHES_CHECKED.labels("engine")._value.get()
    with clock.frozen(NOW):
        response = client.post(BATCH, json.dumps(items), content_type="application/json")
    assert response.status_code == 201 and response.json() == {"accepted": 3}
    assert BATCHES_CHECKED.labels("engine")._value.get() == before + 1
    assert query("SELECT toString(user_id) FROM viewing_events") == [(kept,)]


def staged(items):
    with clock.frozen(NOW):
        return stage_batch(json.dumps(items).encode(), now=clock.now(), retention_days=365)


def test_a_group_keeps_the_first_of_an_id_repeated_across_its_batches(ch):
    shared, user = str(uuid.uuid4()), str(uuid.uuid4())
    first = staged([dict(item(), id=shared, user_id=user, position_seconds=1),
                    dict(item(), id=str(uuid.uuid4()), user_id=user, position_seconds=3)])
    second = staged([dict(item(), id=shared, user_id=user, position_seconds=2)])
    assert first is not None and second is not None
    assert staged_store([first, second]) == 2
    assert query("SELECT position_seconds FROM viewing_events ORDER BY position_seconds") == [(1,), (3,)]
    assert staged_store([second]) == 0  # stored already


@pytest.mark.parametrize("one_stored", [False, True], ids=["all new", "one stored already"])
def test_a_failed_insert_is_kept_and_completed_with_the_engines_rows(ch, client, one_stored):
    """A view refusing the insert: 503, nothing acknowledged; the raw table took the rows, so
    the insert is remembered with the rows the engine made (random ids included; not the one
    stored before) and sent again before the next batch: every table then holds each event once."""
    items = [dict(item(), user_id=str(uuid.uuid4())) for _ in range(5)]
    for i in items:
        i.pop("id")
    if one_stored:
        items[0]["id"] = str(uuid.uuid4())
        assert staged_store([staged(items[:1])]) == 1
    with connections["clickhouse"].cursor() as cursor:
        cursor.execute("ALTER TABLE events_daily ADD CONSTRAINT refuse CHECK day < '2000-01-01'")
    try:
        with clock.frozen(NOW):
            response = client.post(BATCH, json.dumps(items), content_type="application/json")
        assert response.status_code == 503
        unfinished = services.unfinished_inserts()
        assert len(unfinished) == 1 and len(unfinished[0].rows) == 5 - one_stored
        new_ids = {r[0] for r in query("SELECT id FROM viewing_events")} - (
            {uuid.UUID(items[0]["id"])} if one_stored else set())
        assert new_ids == {row[0] for row in unfinished[0].rows}
    finally:
        with connections["clickhouse"].cursor() as cursor:
            cursor.execute("ALTER TABLE events_daily DROP CONSTRAINT refuse")
    with clock.frozen(NOW):
        again = client.post(BATCH, body(item()).replace("USER", str(uuid.uuid4())).replace("EVID", str(uuid.uuid4())),
                            content_type="application/json")
    assert again.status_code == 201 and not services.unfinished_inserts()
    assert query("SELECT count(), uniqExact(id) FROM viewing_events") == [(6, 6)]
    assert query("SELECT count() FROM event_ids") == [(6,)]
    assert query("SELECT sum(events) FROM events_daily") == [(6,)]


def test_a_failed_insert_across_two_months_is_completed_without_a_double(ch):
    """The engine inserts a group's rows in the staged files' order; a completion sends them
    sorted by id (services' insert tuples). Here the staged order has the later month first,
    the sorted one the earlier: the same token must still make the same parts in the raw table
    and every view, so nothing is stored twice (engine_store.INSERT_ROWS relies on it)."""
    user = str(uuid.uuid4())
    later = [dict(item(), id=f"ffffffff-0000-4000-8000-00000000000{i}", user_id=user) for i in range(3)]
    earlier = [dict(item(), id=f"00000000-0000-4000-8000-00000000000{i}", user_id=user,
                    event_time=iso(NOW - timedelta(days=40))) for i in range(2)]
    with connections["clickhouse"].cursor() as cursor:
        cursor.execute("ALTER TABLE events_daily ADD CONSTRAINT refuse CHECK day < '2000-01-01'")
    try:
        with pytest.raises(DatabaseError, match="refuse"):
            staged_store([staged(later + earlier)])
        (unfinished,) = services.unfinished_inserts()
        assert unfinished.rows[0][0] == uuid.UUID(earlier[0]["id"])  # sorted: the earlier month first
    finally:
        with connections["clickhouse"].cursor() as cursor:
            cursor.execute("ALTER TABLE events_daily DROP CONSTRAINT refuse")
    assert staged_store([staged([dict(item(), id=str(uuid.uuid4()), user_id=user)])]) == 1  # completes it first
    assert not services.unfinished_inserts()
    assert query("SELECT count(), uniqExact(id) FROM viewing_events") == [(6, 6)]
    assert query("SELECT count() FROM event_ids") == [(6,)]
    assert query("SELECT sum(events) FROM events_daily") == [(6,)]


def test_the_engine_keeps_a_tokens_parts_apart_by_partition(ch):
    """What lets engine_store.INSERT_ROWS skip sorting: a part's identity under a token is its
    partition, not its place among the insert's parts. An insert that wrote one month's part
    and failed, sent again with both months in another order, adds only the missing month
    (were parts told apart by their place, the month written first would be skipped as a
    repeat and the other stored twice)."""
    def insert(rows):
        values = ", ".join(f"(generateUUIDv4(), toUUID('{user}'), toUUID('{MOVIE}'), 'start', 0, "
                           f"toDateTime('{t}', 'UTC'), NULL, '{{}}', now())" for t in rows)
        with connections["clickhouse"].cursor() as cursor:
            cursor.execute("INSERT INTO viewing_events (id, user_id, movie_id, event_type, position_seconds, "
                           "event_time, session_id, metadata, created_at) SETTINGS insert_deduplicate = 1, "
                           f"insert_deduplication_token = 'T' VALUES {values}")

    user = str(uuid.uuid4())
    earlier, later = NOW - timedelta(days=40), NOW - timedelta(hours=1)
    as_text = [m.strftime("%Y-%m-%d %H:%M:%S") for m in (earlier, later)]
    insert([as_text[0]])  # the earlier month's part only
    insert([as_text[1], as_text[0]])  # both, the later month first
    assert query("SELECT toYYYYMM(event_time), count() FROM viewing_events GROUP BY 1 ORDER BY 1") == [
        (int(earlier.strftime("%Y%m")), 1), (int(later.strftime("%Y%m")), 1)]


def test_a_group_commit_insert_takes_batches_of_one_kind(ch):
    """Staged batches and rows checked in Python never share an insert: a group ends where
    the kind changes (the first alone, the rows alone, then the last two staged together)."""
    from tests.viewing.test_batch_commit import rows
    from viewing.batch_commit import BatchGroupCommit

    group = BatchGroupCommit()
    batches = [staged([dict(item(), id=str(uuid.uuid4()), user_id=str(uuid.uuid4()))]), rows(2),
               staged([dict(item(), id=str(uuid.uuid4()), user_id=str(uuid.uuid4()))]),
               staged([dict(item(), id=str(uuid.uuid4()), user_id=str(uuid.uuid4()))])]
    errors = []

    def submit(batch):
        try:
            group.submit(batch)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit, args=(b,)) for b in batches]
    with services.writes_paused():  # the first leads and waits; the others queue behind it
        for t in threads:
            t.start()
            time.sleep(0.2)
    for t in threads:
        t.join(timeout=30)
    assert errors == [] and (group.inserts, group.requests) == (3, 4)
    assert query("SELECT count() FROM viewing_events") == [(5,)]


def test_after_declines_in_a_row_the_next_batches_skip_the_engine(ch, client):
    declined, taken = DECLINED["metadata integral float"], TAKEN["plain"]
    paths = []
    for text in [declined, taken, declined, taken, taken, taken, declined, declined, taken, taken]:
        paths.append("engine" if send(client, text, engine=True)[3] else "rules")
    # Declined: the next batch skips the engine; declined again when tried: the next two skip
    # it; a batch taken resets that, so after the next decline only one batch skips it.
    assert paths == ["rules", "rules", "rules", "rules", "rules", "engine", "rules", "rules", "engine", "engine"]
