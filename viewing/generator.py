"""Realistic synthetic viewing events (for `manage.py generate_events`, demos and benchmarks).

What makes them realistic enough to show something:
- Movie popularity is Zipf-like (weight 1 / rank^1.1): a few titles take most views.
- Users differ in how much they watch (log-normal activity), each on one device.
- Sessions: `start` (from 0, or resuming), a `progress` heartbeat every 5 minutes of playback,
  and `finish` at the end for ~55 % of sessions; the rest are abandoned part-way.
- Daily and weekly cycles: an evening peak around 21:00 UTC, a night trough, busier weekends.
- Sessions run in real time; a session still playing at `now` has its events so far.

Deterministic: the same seed and sizes give the same events. Event ids come from their own
seeded stream, one per event in order, so they do not depend on the day the command runs:
re-running the same seed stores nothing new (events_store skips ids already stored).
"""

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from itertools import accumulate

HEARTBEAT_SECONDS = 300
FINISH_SHARE = 0.55
RESUME_SHARE = 0.15
# Relative activity per UTC hour: night trough, evening peak at 21:00.
HOURLY_CYCLE = [
    0.55, 0.4, 0.28, 0.2, 0.15, 0.15, 0.2, 0.3, 0.4, 0.5, 0.58, 0.64,
    0.7, 0.72, 0.72, 0.75, 0.82, 0.95, 1.15, 1.45, 1.75, 1.95, 1.7, 1.1,
]
WEEKEND_BOOST = 1.3
DEVICES = ["tv", "web", "ios", "android"]
QUALITIES = ["480p", "720p", "1080p", "2160p"]


def _uuid(rng):
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def event_batches(*, events, days, users, movies, seed, batch_size=100_000, now=None):
    """Yield lists of at most `batch_size` row dicts (what services.events_store takes),
    `events` rows in all, spread over the `days` UTC dates ending today."""
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0, tzinfo=None)
    rng = random.Random(seed)
    ids = random.Random(f"event-ids:{seed}")

    movie_ids = [_uuid(rng) for _ in range(movies)]
    durations = [rng.randint(80, 160) * 60 for _ in range(movies)]
    movie_weights = list(accumulate(1 / (rank + 1) ** 1.1 for rank in range(movies)))
    user_ids = [_uuid(rng) for _ in range(users)]
    user_weights = list(accumulate(rng.lognormvariate(0, 1) for _ in range(users)))
    user_devices = [rng.choice(DEVICES) for _ in range(users)]

    first_day = now.date() - timedelta(days=days - 1)
    day_starts = [datetime.combine(first_day + timedelta(days=d), datetime.min.time()) for d in range(days)]
    day_weights = list(accumulate(WEEKEND_BOOST if d.weekday() >= 5 else 1.0 for d in day_starts))
    hour_weights = list(accumulate(HOURLY_CYCLE))
    hours = range(24)

    batch, made = [], 0
    while made < events:
        day = rng.choices(day_starts, cum_weights=day_weights)[0]
        hour = rng.choices(hours, cum_weights=hour_weights)[0]
        started = day + timedelta(hours=hour, seconds=rng.randrange(3600))
        m = rng.choices(range(movies), cum_weights=movie_weights)[0]
        u = rng.choices(range(users), cum_weights=user_weights)[0]
        duration = durations[m]
        position = rng.randrange(duration // 2) if rng.random() < RESUME_SHARE else 0
        finishes = rng.random() < FINISH_SHARE
        stop_at = duration if finishes else position + int((duration - position) * rng.uniform(0.05, 0.9))
        session = _uuid(rng)
        if started > now:
            continue  # later today: not happened yet

        plan = [("start", position, started)]
        elapsed = HEARTBEAT_SECONDS
        while position + elapsed < stop_at:
            plan.append(("progress", position + elapsed, started + timedelta(seconds=elapsed)))
            elapsed += HEARTBEAT_SECONDS
        if finishes:
            plan.append(("finish", duration, started + timedelta(seconds=duration - position)))

        metadata = json.dumps({"device": user_devices[u], "quality": rng.choice(QUALITIES)}, separators=(",", ":"))
        for event_type, at_position, moment in plan:
            if moment > now or made >= events:
                break  # still playing at `now`, or enough events
            batch.append(
                {
                    "id": _uuid(ids),
                    "user_id": user_ids[u],
                    "movie_id": movie_ids[m],
                    "event_type": event_type,
                    "position_seconds": at_position,
                    "event_time": moment,
                    "session_id": session,
                    "metadata": metadata if event_type == "start" else "{}",
                }
            )
            made += 1
            if len(batch) >= batch_size:
                yield batch
                batch = []
    if batch:
        yield batch
