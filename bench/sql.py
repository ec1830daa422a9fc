"""Raw-table versions of the analytics queries, beside the materialized-view ones in
viewing/queries.py: the same answers computed from viewing_events, to show what the aggregate
tables save. Same parameters as the service's queries (the engagement endpoints' in
bench/sql_engagement.py)."""

from viewing import queries

from .sql_engagement import ENDPOINT_SQL as ENGAGEMENT_SQL

# The window is a range of toDate(event_time): the prefix of viewing_events' sort key.
POPULAR_CONTENT = """
SELECT
    movie_id,
    countIf(event_type = 'start') AS total_views,
    uniq(user_id) AS unique_viewers,
    countIf(event_type = 'finish') AS finishes
FROM viewing_events
WHERE toDate(event_time) BETWEEN %(first_day)s AND %(last_day)s
GROUP BY movie_id
HAVING total_views > 0
ORDER BY total_views DESC, unique_viewers DESC, toString(movie_id) ASC
LIMIT %(limit)s
"""

# One user: day prefix of the sort key, then user_id (second key column) and its bloom filter.
USER_STATS = """
SELECT
    sum(starts) AS movies_started,
    sum(finishes) AS movies_finished,
    count() AS unique_movies_watched,
    sum(watch_seconds) AS total_watch_time_seconds,
    if(movies_started = 0, NULL,
       argMin(movie_id, (-toInt64(starts), toString(movie_id)))) AS most_watched_movie_id
FROM
(
    SELECT
        movie_id,
        countIf(event_type = 'start') AS starts,
        countIf(event_type = 'finish') AS finishes,
        sumIf(toUInt64(position_seconds), event_type = 'finish') AS watch_seconds
    FROM viewing_events
    WHERE user_id = %(user_id)s AND toDate(event_time) BETWEEN %(first_day)s AND %(last_day)s
    GROUP BY movie_id
)
"""

TRENDS = """
SELECT
    toDate(event_time) AS day,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    count() AS total_events,
    uniq(user_id) AS unique_users,
    uniq(movie_id) AS unique_movies
FROM viewing_events
WHERE toDate(event_time) BETWEEN %(first_day)s AND %(last_day)s
GROUP BY day
ORDER BY day
"""

PEAK_HOURS = """
SELECT
    toHour(event_time) AS hour_of_day,
    count() AS events_count,
    uniq(user_id) AS unique_users
FROM viewing_events
WHERE event_time >= %(start)s AND event_time < %(end)s
GROUP BY hour_of_day
ORDER BY hour_of_day
"""

# endpoint name → (the service's query on the aggregate table, the raw-table version)
ENDPOINT_SQL = {
    "popular": (queries.POPULAR_CONTENT, POPULAR_CONTENT),
    "user_stats": (queries.USER_STATS, USER_STATS),
    "trends": (queries.TRENDS, TRENDS),
    "peak_hours": (queries.PEAK_HOURS, PEAK_HOURS),
    **ENGAGEMENT_SQL,
}
