"""A small seeded generator of viewing events for the reference tests.

It gives the true events, and the JSON a client would send for each, in every accepted spelling
and time format.
"""

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

SPELLINGS = {
    "start": ["start", "stream.start", "stream_start"],
    "progress": ["progress", "stream.progress", "stream_progress", "progress_update"],
    "finish": ["finish", "stop", "stream.stop", "stream_stop"],
}
TIME_FORMATS = ["iso_z", "iso_offset", "iso_fraction", "epoch_s", "epoch_ms", "epoch_s_text", "absent"]


@dataclass(frozen=True)
class Event:
    """The truth: what the service should store (event_time naive UTC)."""

    id: uuid.UUID
    user_id: uuid.UUID
    movie_id: uuid.UUID
    event_type: str
    position_seconds: int
    event_time: datetime
    session_id: uuid.UUID | None = None
    metadata: dict | None = None


def seeded_uuid(rng):
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def render_time(moment, fmt, rng):
    """`moment` (naive UTC) as a client could send it; None for "absent"."""
    aware = moment.replace(tzinfo=UTC)
    if fmt == "iso_z":
        return aware.strftime("%Y-%m-%dT%H:%M:%SZ")
    if fmt == "iso_offset":
        offset = timezone(timedelta(hours=rng.choice([-5, 2, 9]), minutes=rng.choice([0, 30])))
        return aware.astimezone(offset).isoformat()
    if fmt == "iso_fraction":  # sub-second parts are dropped
        return aware.strftime("%Y-%m-%dT%H:%M:%S") + f".{rng.randrange(1000):03d}Z"
    epoch = int(aware.timestamp())
    if fmt == "epoch_s":
        return epoch
    if fmt == "epoch_ms":
        return epoch * 1000 + rng.randrange(1000)
    if fmt == "epoch_s_text":
        return str(epoch)
    raise ValueError(fmt)


def payload(event, rng, *, time_format=None, spelling=None):
    """The JSON object a client sends for `event`. time_format "absent" leaves the time out
    (the service then uses the time of receipt, so only use it when event_time is "now")."""
    fmt = time_format or rng.choice(TIME_FORMATS[:-1])
    body = {
        "id": str(event.id),
        "user_id": str(event.user_id) if rng.random() < 0.8 else str(event.user_id).upper(),
        "movie_id": str(event.movie_id),
        "event_type": spelling or rng.choice(SPELLINGS[event.event_type]),
    }
    if event.position_seconds or rng.random() < 0.5:
        body["position_seconds"] = event.position_seconds
    if fmt != "absent":
        body["event_time" if rng.random() < 0.5 else "timestamp"] = render_time(event.event_time, fmt, rng)
    if event.session_id is not None:
        body["session_id"] = str(event.session_id)
    elif rng.random() < 0.5:
        body["session_id"] = None
    if event.metadata is not None:
        body["metadata"] = event.metadata
    return body


def events_generate(*, seed, count, now, days_back, users=10, movies=6):
    """`count` events between `days_back` days before today 00:00 UTC and `now` (naive UTC),
    with a share of them on the midnights themselves, over small pools of users and movies so
    that ties and repeats happen."""
    rng = random.Random(seed)
    user_ids = [seeded_uuid(rng) for _ in range(users)]
    movie_ids = [seeded_uuid(rng) for _ in range(movies)]
    start = datetime.combine(now.date() - timedelta(days=days_back), datetime.min.time())
    span = int((now - start).total_seconds())
    events = []
    for _ in range(count):
        if rng.random() < 0.1:  # on a UTC midnight, or the second before it
            moment = start + timedelta(days=rng.randrange(days_back + 1), seconds=rng.choice([0, -1]))
            moment = max(moment, start)
        else:
            moment = start + timedelta(seconds=rng.randrange(span + 1))
        events.append(
            Event(
                id=seeded_uuid(rng),
                user_id=rng.choice(user_ids),
                movie_id=rng.choice(movie_ids),
                event_type=rng.choices(["start", "progress", "finish"], weights=[4, 3, 3])[0],
                position_seconds=rng.randrange(0, 9000),
                event_time=moment,
                session_id=seeded_uuid(rng) if rng.random() < 0.6 else None,
                metadata=rng.choice([None, {}, {"device": "tv"}, {"device": "web", "player": {"v": 3, "hd": True}}]),
            )
        )
    return events
