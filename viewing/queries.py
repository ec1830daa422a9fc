"""Named, parametrized SQL for the viewing data (clickhouse-driver %(name)s parameters).

User input is only ever passed as parameters, never formatted into the text.
"""

EVENT_COLUMNS = (
    "id",
    "user_id",
    "movie_id",
    "event_type",
    "position_seconds",
    "event_time",
    "session_id",
    "metadata",
    "created_at",
)

INSERT_EVENTS = f"INSERT INTO viewing_events ({', '.join(EVENT_COLUMNS)}) VALUES"

# Which of these ids are stored already. event_ids is sorted by id in small granules, so
# this reads about one granule per id asked, whatever the size of the table. The ids come
# as one comma-separated string parameter: a literal tuple of thousands of UUIDs costs
# ClickHouse and the driver several times more to parse (measured: 66 ms vs 10 ms for 5,000),
# and the IN subquery still uses the primary key (EXPLAIN indexes=1 selects the same granules).
STORED_IDS = """
SELECT id
FROM event_ids
WHERE id IN (SELECT toUUID(arrayJoin(splitByChar(',', %(ids)s))))
"""

# The time of one stored event, by id: event_ids is sorted by id, and the time then finds the
# raw row through viewing_events' sort key (the admin's search by event id).
EVENT_TIME_OF_ID = """
SELECT event_time
FROM event_ids
WHERE id = %(id)s
LIMIT 1
"""

# --- Analytics reads ----------------------------------------------------------------------
# Every read takes the window as `first_day`/`last_day` (UTC dates, both included). The
# aggregate tables are merged in the background only eventually, so each read GROUPs BY its
# key and sums the SimpleAggregateFunction columns / merges the uniq states itself.

# Popular content: a range of days of popular_content_daily, folded per movie. Movies with no
# `start` in the window are left out (HAVING), ties ordered by the id as text, which is how
# clients compare ids (ClickHouse orders UUIDs by their two 64-bit halves, not as text).
POPULAR_CONTENT = """
SELECT
    movie_id,
    sum(starts) AS total_views,
    uniqMerge(viewers) AS unique_viewers,
    sum(finishes) AS finishes
FROM popular_content_daily
WHERE day BETWEEN %(first_day)s AND %(last_day)s
GROUP BY movie_id
HAVING total_views > 0
ORDER BY total_views DESC, unique_viewers DESC, toString(movie_id) ASC
LIMIT %(limit)s
"""

# One user's stats: user_stats_daily is keyed (user_id, day, movie_id), so the window of one
# user is one contiguous key range. The inner query folds it per movie; the outer one gives a
# single row, zeros for a user with no events. Most watched = most starts, ties to the
# smallest id as text; NULL when nothing was started.
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
        sum(starts) AS starts,
        sum(finishes) AS finishes,
        sum(watch_seconds) AS watch_seconds
    FROM user_stats_daily
    WHERE user_id = %(user_id)s AND day BETWEEN %(first_day)s AND %(last_day)s
    GROUP BY movie_id
)
"""

# Trends: one row of events_daily per day; distinct users and movies of a day come from the
# day's merged states. Days without events are absent here and zero-filled by the selector.
TRENDS = """
SELECT
    day,
    sum(starts) AS starts,
    sum(finishes) AS finishes,
    sum(events) AS total_events,
    uniqMerge(users) AS unique_users,
    uniqMerge(movies) AS unique_movies
FROM events_daily
WHERE day BETWEEN %(first_day)s AND %(last_day)s
GROUP BY day
ORDER BY day
"""

# Peak hours: the window's hours of events_hourly folded onto the hour of day, merging the
# user states of the same hour across days (a viewer seen at 21:00 on two days is one
# viewer of hour 21). The window is [start, end): first_day 00:00 to the midnight after
# last_day, UTC (the column is DateTime('UTC'), so the literals are read as UTC).
PEAK_HOURS = """
SELECT
    toHour(hour) AS hour_of_day,
    sum(events) AS events_count,
    uniqMerge(users) AS unique_users
FROM events_hourly
WHERE hour >= %(start)s AND hour < %(end)s
GROUP BY hour_of_day
ORDER BY hour_of_day
"""
