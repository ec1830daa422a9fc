"""Raw-table versions of the analytics queries, beside the materialized-view ones in
viewing/queries.py: the same answers computed from viewing_events, to show what the aggregate
tables save. Same parameters as the service's queries (the engagement endpoints' in
bench/sql_engagement.py)."""

from viewing import queries, selectors

from .sql_engagement import ENDPOINT_SQL as ENGAGEMENT_SQL

# The window is [start, end) of event_time (UTC instants of the window's local midnights); the
# sort key's date prefix prunes to the window's dates.
POPULAR_CONTENT = """
SELECT
    movie_id,
    countIf(event_type = 'start') AS total_views,
    uniq(user_id) AS unique_viewers,
    countIf(event_type = 'finish') AS finishes
FROM viewing_events
WHERE event_time >= %(start)s AND event_time < %(end)s
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
    WHERE user_id = %(user_id)s AND event_time >= %(start)s AND event_time < %(end)s
    GROUP BY movie_id
)
"""

# Local dates and hours with the same shift as the service's statements (viewing/queries.py).
TRENDS = f"""
SELECT
    {queries.BUCKETS["day"]("event_time")} AS day,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    count() AS total_events,
    uniq(user_id) AS unique_users,
    uniq(movie_id) AS unique_movies
FROM viewing_events
WHERE event_time >= %(start)s AND event_time < %(end)s
GROUP BY day
ORDER BY day
"""

PEAK_HOURS = f"""
SELECT
    {queries.BUCKETS["hour_of_day"]("event_time")} AS hour_of_day,
    count() AS events_count,
    uniq(user_id) AS unique_users
FROM viewing_events
WHERE event_time >= %(start)s AND event_time < %(end)s
GROUP BY hour_of_day
ORDER BY hour_of_day
"""

RAW = {"popular": POPULAR_CONTENT, "user_stats": USER_STATS, "trends": TRENDS, "peak_hours": PEAK_HOURS}


def analytics_sql(window, users):
    """endpoint → (the service's statement, the raw-table version, parameters of request i) for
    popular, user stats, trends (by day) and peak hours over `window`: exactly what the
    selectors run (viewing.selectors.statement)."""
    out = {}
    for name, raw in RAW.items():
        if name == "user_stats":
            sql, _ = selectors.statement(name, window=window, user_id=users[0])
            out[name] = (sql, raw, lambda i: selectors.statement(
                "user_stats", window=window, user_id=users[i % len(users)])[1] | window.shift())
        else:
            sql, params = selectors.statement(name, window=window, limit=10)
            params = {"limit": 10, **window.shift(), **params}
            out[name] = (sql, raw, lambda i, p=params: p)
    return out


# endpoint name → (the service's query on the aggregate tables, the raw-table version); the
# four analytics reads come from analytics_sql, per window.
ENDPOINT_SQL = {**ENGAGEMENT_SQL}
