"""Events for the engagement tests: named edge cases around a given day, plus seeded random
sessions over many days so that windows cut views everywhere."""

import random
import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from tests.generator import Event, seeded_uuid

# Ids whose order as text and ClickHouse's UUID order disagree (ties in top movies).
LOW_TEXT = uuid.UUID("00000000-0000-4000-bfff-ffffffffffff")
HIGH_TEXT = uuid.UUID("ffffffff-ffff-4fff-8000-000000000000")


class Builder:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.events = []

    def uid(self):
        return seeded_uuid(self.rng)

    def add(self, *, user, movie, kind, position, at, session):
        self.events.append(Event(id=self.uid(), user_id=user, movie_id=movie, event_type=kind,
                                 position_seconds=position, event_time=at, session_id=session))


def last_transition(zone_name, today):
    """The latest local date before `today` on which `zone_name` changed its UTC offset."""
    zone = ZoneInfo(zone_name)
    day = today
    for _ in range(400):
        before = datetime.combine(day - timedelta(days=1), time(12), tzinfo=zone).utcoffset()
        if datetime.combine(day, time(12), tzinfo=zone).utcoffset() != before:
            return day
        day -= timedelta(days=1)
    raise AssertionError(f"{zone_name} has no offset change in the last 400 days")


def edge_cases(now, *, dst_day=None):
    """The named cases, `now` naive UTC (the day's events end before it). Returns (events, ids)."""
    b = Builder(seed=5)
    today = datetime.combine(now.date(), time())
    u1, u2, u3, u4 = (b.uid() for _ in range(4))
    movie_a, movie_b, movie_c = b.uid(), b.uid(), b.uid()

    # Events without a session: counted as events, never a view.
    b.add(user=u1, movie=movie_a, kind="start", position=0, at=today - timedelta(days=1, hours=-10), session=None)
    b.add(user=u1, movie=movie_a, kind="finish", position=5400, at=today - timedelta(days=1, hours=-11), session=None)
    # A one-event view: live for one instant, 0 s watched.
    b.add(user=u2, movie=movie_b, kind="progress", position=300, at=today - timedelta(days=2, hours=-12),
          session=b.uid())
    # Across UTC midnight (yesterday 23:50 → today 00:20) and so across the edge of days=1.
    s = b.uid()
    for minutes, kind in ((-10, "start"), (-5, "progress"), (5, "progress"), (20, "finish")):
        b.add(user=u3, movie=movie_a, kind=kind, position=600 + 60 * (minutes + 10), at=today + timedelta(minutes=minutes),
              session=s)
    # Across Kathmandu's midnight (18:15 UTC) and New York's (04:00/05:00 UTC).
    for start in (today - timedelta(hours=5, minutes=50), today - timedelta(days=1, hours=20, minutes=10)):
        s = b.uid()
        for k in range(5):
            b.add(user=u4, movie=movie_c, kind="start" if k == 0 else "progress", position=120 * k,
                  at=start + timedelta(minutes=10 * k), session=s)
    # Resuming mid-film: low > 0.
    s = b.uid()
    for k, kind in enumerate(["start", "progress", "progress", "finish"]):
        b.add(user=u2, movie=movie_b, kind=kind, position=1800 + 300 * k, at=today - timedelta(days=3, hours=-20, minutes=-5 * k),
              session=s)
    # Two views touching at the same second (both live then), one of the same user.
    touch = today - timedelta(days=1, hours=-20)
    s5, s6 = b.uid(), b.uid()
    b.add(user=u1, movie=movie_c, kind="start", position=0, at=touch - timedelta(minutes=30), session=s5)
    b.add(user=u1, movie=movie_c, kind="progress", position=1800, at=touch, session=s5)
    b.add(user=u2, movie=movie_c, kind="start", position=0, at=touch, session=s6)
    b.add(user=u2, movie=movie_c, kind="finish", position=2400, at=touch + timedelta(minutes=40), session=s6)
    # A view crossing the edge of the 7-day window (UTC).
    s = b.uid()
    edge = today - timedelta(days=6)
    for minutes in (-20, -1, 0, 15):
        b.add(user=u3, movie=movie_b, kind="progress", position=3000 + 60 * minutes, at=edge + timedelta(minutes=minutes),
              session=s)
    if dst_day is not None:  # around a day whose clock changes: views every 20 minutes, all day
        s = b.uid()
        for k in range(0, 30 * 3):
            b.add(user=u4, movie=movie_a, kind="progress", position=20 * k,
                  at=datetime.combine(dst_day, time()) + timedelta(minutes=20 * k), session=s if k % 7 else b.uid())
    return b.events, {"movies": [movie_a, movie_b, movie_c], "users": [u1, u2, u3, u4]}


def random_sessions(now, *, seed, sessions=60, days_back=9):
    """Sessions of 1–12 events (gaps of up to 40 minutes, some resuming), over few users and
    movies, between `days_back` days ago and `now`; a share of events without a session."""
    b = Builder(seed)
    users = [b.uid() for _ in range(6)]
    movies = [b.uid() for _ in range(4)] + [LOW_TEXT, HIGH_TEXT]
    span = int(timedelta(days=days_back).total_seconds())
    for _ in range(sessions):
        session = b.uid() if b.rng.random() < 0.85 else None
        user, movie = b.rng.choice(users), b.rng.choice(movies)
        at = now - timedelta(seconds=b.rng.randrange(span))
        position = b.rng.choice([0, 0, 0, b.rng.randrange(4000)])
        for k in range(b.rng.randint(1, 12)):
            if at > now:
                break
            kind = "start" if k == 0 else b.rng.choice(["progress", "progress", "finish"])
            b.add(user=user, movie=movie, kind=kind, position=position, at=at, session=session)
            step = b.rng.choice([0, 1, 60, 300, 900, 2400])
            at += timedelta(seconds=step)
            position += step if b.rng.random() < 0.9 else -b.rng.randrange(min(position, 600) + 1)
    return b.events
