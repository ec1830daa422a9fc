"""The analytics reads: right across unmerged parts, rates half up and capped."""

import uuid
from datetime import timedelta

import pytest

from tests.conftest import query
from viewing import clock, selectors
from viewing.services import events_store
from viewing.windows import Window


def event(user, movie, event_type, moment, position=0):
    return {
        "id": uuid.uuid4(),
        "user_id": user,
        "movie_id": movie,
        "event_type": event_type,
        "position_seconds": position,
        "event_time": moment,
        "session_id": None,
        "metadata": "{}",
    }


@pytest.mark.parametrize(
    "numerator, denominator, expected",
    [(0, 0, 0.0), (3, 0, 0.0), (0, 5, 0.0), (1, 3, 33.33), (2, 3, 66.67), (1, 32, 3.13), (1, 8, 12.5),
     (5, 4, 100.0), (7, 7, 100.0), (1, 160, 0.63), (1, 200001, 0.0)],
)
def test_rate(numerator, denominator, expected):
    assert selectors.rate(numerator, denominator) == expected


def days(n):
    return Window.of_days(n, now=clock.now())


def test_reads_sum_across_parts_that_are_not_merged_yet(ch, frozen_now):
    now = frozen_now.replace(tzinfo=None)
    user, movie = uuid.uuid4(), uuid.uuid4()
    others = [uuid.uuid4() for _ in range(3)]
    # Five separate inserts: five parts in every aggregate table, the same keys in each. Merges
    # are stopped meanwhile: a background merge right after the inserts made this test flaky.
    query("SYSTEM STOP MERGES popular_content_daily")
    try:
        for viewer in [user, user, *others]:
            events_store(events=[event(viewer, movie, "start", now), event(viewer, movie, "finish", now, 60)])
        parts = query(
            "SELECT count() FROM system.parts WHERE database = currentDatabase() "
            "AND table = 'popular_content_daily' AND active"
        )[0][0]
    finally:
        query("SYSTEM START MERGES popular_content_daily")
    assert parts > 1  # the reads below must still give one row per key

    popular = selectors.popular_content(window=days(1), limit=10)
    assert [(i["movie_id"], i["total_views"], i["unique_viewers"]) for i in popular["items"]] == [(movie, 5, 4)]
    stats = selectors.user_stats(user_id=user, window=days(1))
    assert (stats["movies_started"], stats["movies_finished"], stats["total_watch_time_seconds"]) == (2, 2, 120)
    assert stats["unique_movies_watched"] == 1 and stats["most_watched_movie_id"] == movie
    today = selectors.trends(window=days(1))["trends"][0]
    assert (today["total_events"], today["unique_users"], today["unique_movies"]) == (10, 4, 1)
    hour = selectors.peak_hours(window=days(1))["peak_hours"][now.hour]
    assert (hour["events_count"], hour["unique_users"]) == (10, 4)


def test_hours_of_different_days_fold_onto_the_hour_of_day(ch, frozen_now):
    now = frozen_now.replace(tzinfo=None)
    viewer, movie = uuid.uuid4(), uuid.uuid4()
    at_nine = [now.replace(hour=9) - timedelta(days=d) for d in range(3)]
    events_store(events=[event(viewer, movie, "progress", m) for m in at_nine])
    peak = selectors.peak_hours(window=days(3))
    assert peak["peak_hour"] == 9
    assert peak["peak_hours"][9] == {"hour": 9, "events_count": 3, "unique_users": 1}
    assert selectors.peak_hours(window=days(2))["peak_hours"][9]["events_count"] == 2
