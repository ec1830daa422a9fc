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

# How many of these ids the raw table holds, within the batch's time range (the raw table's
# sort key starts with the day): after a failed insert, whether the raw table took its rows
# although a view (or event_ids) did not. Same id string as STORED_IDS.
RAW_IDS_COUNT = """
SELECT count()
FROM viewing_events
WHERE event_time BETWEEN toDateTime(%(first)s, 'UTC') AND toDateTime(%(last)s, 'UTC')
    AND id IN (SELECT toUUID(arrayJoin(splitByChar(',', %(ids)s))))
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
# Every read takes its window as UTC instants [start, end) (the window's first local midnight
# and the one after it; viewing/windows.py). The aggregate tables are merged in the background
# only eventually, so each read GROUPs BY its key and sums the SimpleAggregateFunction columns /
# merges the uniq states itself.
#
# Per movie and per user, the window is split (Window.whole_utc_days): the UTC dates wholly
# inside it come from the daily tables, the edges (less than a day at each end, none in UTC)
# from the raw events, whose sort key starts with the date, so an edge reads one date's
# granules. Both halves give uniq states, merged once: a viewer seen in an edge and in a whole
# day counts once. `whole_first`/`whole_end` are those dates ([first, end)), and
# `whole_start`/`whole_end_time` their instants.

# Popular content: per movie over the window. Movies with no `start` in the window are left
# out (HAVING), ties ordered by the id as text, which is how clients compare ids (ClickHouse
# orders UUIDs by their two 64-bit halves, not as text).
POPULAR_CONTENT = """
SELECT
    movie_id,
    sum(starts) AS total_views,
    uniqMerge(viewers) AS unique_viewers,
    sum(finishes) AS finishes
FROM
(
    SELECT movie_id, sum(starts) AS starts, sum(finishes) AS finishes, uniqMergeState(viewers) AS viewers
    FROM popular_content_daily
    WHERE day >= %(whole_first)s AND day < %(whole_end)s
    GROUP BY movie_id
    UNION ALL
    SELECT
        movie_id,
        countIf(event_type = 'start') AS starts,
        countIf(event_type = 'finish') AS finishes,
        uniqState(user_id) AS viewers
    FROM viewing_events
    WHERE event_time >= %(start)s AND event_time < %(end)s
      AND (event_time < %(whole_start)s OR event_time >= %(whole_end_time)s)
    GROUP BY movie_id
)
GROUP BY movie_id
HAVING total_views > 0
ORDER BY total_views DESC, unique_viewers DESC, toString(movie_id) ASC
LIMIT %(limit)s
"""

# One user's stats: user_stats_daily is keyed (user_id, day, movie_id), so the whole days of
# one user are one contiguous key range, and the raw table's (date, user_id, ...) key finds the
# user's edge events. The middle query folds both per movie; the outer one gives a single row,
# zeros for a user with no events. Most watched = most starts, ties to the smallest id as
# text; NULL when nothing was started.
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
    SELECT movie_id, sum(starts) AS starts, sum(finishes) AS finishes, sum(watch_seconds) AS watch_seconds
    FROM
    (
        SELECT movie_id, starts, finishes, watch_seconds
        FROM user_stats_daily
        WHERE user_id = %(user_id)s AND day >= %(whole_first)s AND day < %(whole_end)s
        UNION ALL
        SELECT
            movie_id,
            toUInt64(event_type = 'start') AS starts,
            toUInt64(event_type = 'finish') AS finishes,
            if(event_type = 'finish', toUInt64(position_seconds), 0) AS watch_seconds
        FROM viewing_events
        WHERE user_id = %(user_id)s AND event_time >= %(start)s AND event_time < %(end)s
          AND (event_time < %(whole_start)s OR event_time >= %(whole_end_time)s)
    )
    GROUP BY movie_id
)
"""

# Trends and peak hours read events_quarter_hourly. The local time of a quarter hour is its
# UTC time plus the zone's offset then: `transitions` (epoch seconds at which the offset
# changes, with a sentinel after the window) and `offsets` (seconds) come from Window.shift(),
# computed in Python from its time-zone database, so no zone rule is looked up in ClickHouse.
_LOCAL_SECONDS = (
    "(toInt64(toUnixTimestamp(quarter))"
    " + %(offsets)s[arrayCount(t -> t <= toUnixTimestamp(quarter), %(transitions)s) + 1])"
)
# The bucket of each interval, as the key Window.buckets() gives: a local date (day, the
# Monday of the ISO week, the first of the month), or for hours the epoch second at which the
# local hour starts (local hours are 45 minutes off UTC hours in +05:45).
_LOCAL_DATE = f"toDate(toDateTime({_LOCAL_SECONDS}, 'UTC'))"
TREND_BUCKETS = {
    "day": _LOCAL_DATE,
    "hour": f"toInt64(toUnixTimestamp(quarter)) - modulo({_LOCAL_SECONDS}, 3600)",
    "week": f"toMonday({_LOCAL_DATE})",
    "month": f"toStartOfMonth({_LOCAL_DATE})",
}
_TRENDS = """
SELECT
    {bucket} AS bucket,
    sum(starts) AS starts,
    sum(finishes) AS finishes,
    sum(events) AS total_events,
    uniqMerge(users) AS unique_users,
    uniqMerge(movies) AS unique_movies
FROM events_quarter_hourly
WHERE quarter >= %(start)s AND quarter < %(end)s
GROUP BY bucket
ORDER BY bucket
"""
# One statement per interval (composed here from the constants above, never from input).
TRENDS = {interval: _TRENDS.format(bucket=bucket) for interval, bucket in TREND_BUCKETS.items()}

# Peak hours: the window's quarter hours folded onto the local hour of day (0..23), merging
# the user states of the same hour across days (a viewer seen at 21:00 on two days is one
# viewer of hour 21). On a day whose clock goes back both passes through the repeated hour
# fall in that one hour.
PEAK_HOURS = f"""
SELECT
    intDiv(modulo({_LOCAL_SECONDS}, 86400), 3600) AS hour_of_day,
    sum(events) AS events_count,
    uniqMerge(users) AS unique_users
FROM events_quarter_hourly
WHERE quarter >= %(start)s AND quarter < %(end)s
GROUP BY hour_of_day
ORDER BY hour_of_day
"""
