"""Named, parametrized SQL of the engagement reads (clickhouse-driver %(name)s parameters).

Every windowed read takes the window as `start` and `end`: the UTC instants of the first local
midnight of the window and of the midnight after its last date, both on a quarter hour (see
viewing/ddl_engagement.py), so `bucket >= start AND bucket < end` selects exactly the pieces of
views inside the window. view_segments is merged in the background only eventually, so every
read folds its rows itself (min/max/sum over the pieces of a view).
"""

# The views of a window: the 15-minute pieces of each (session, movie) merged. A fragment of
# the statements below (fixed text, no input in it; bench/sql_engagement.py swaps it for the
# same views read from the raw table).
VIEWS_OF_WINDOW = """
    SELECT
        min(first_time) AS first_time,
        max(last_time) AS last_time,
        min(low) AS low,
        max(high) AS high
    FROM view_segments
    WHERE bucket >= %(start)s AND bucket < %(end)s AND session_id IS NOT NULL
    GROUP BY movie_id, session_id
"""

# The event counters of the summary, over every event of the window (with or without a
# session). Distinct users and movies over the whole window, not summed per day.
SUMMARY_COUNTERS = """
SELECT
    sum(starts) AS starts,
    sum(finishes) AS finishes,
    sum(events) AS total_events,
    uniq(user_id) AS unique_users,
    uniq(movie_id) AS unique_movies
FROM view_segments
WHERE bucket >= %(start)s AND bucket < %(end)s
"""

# Views, watched seconds and the peak of concurrent views. A view is live on the closed
# interval [first_time, last_time] of whole seconds: +1 at first_time, -1 one second after
# last_time. Each step is one integer, second × 2 + (1 for +1, 0 for -1), so sorting the
# integers (~20 % less CPU than sorting (second, step) tuples) puts a -1 before a +1 of the same
# second: a view that ends the second before another starts never counts with it, while two
# views touching at the same second (one's last = the other's first) do. The running sum's
# maximum is the peak.
SUMMARY_VIEWS = f"""
SELECT
    count() AS views,
    sum(high - low) AS watched_seconds,
    arrayMax(arrayCumSum(arrayMap(step -> toInt32(modulo(step, 2)) * 2 - 1, arraySort(arrayConcat(
        groupArray(toUInt64(toUInt32(first_time)) * 2 + 1),
        groupArray((toUInt64(toUInt32(last_time)) + 1) * 2)
    ))))) AS peak_concurrent_views
FROM ({VIEWS_OF_WINDOW})
"""

# Concurrency per 15-minute slot: the number of live views after each second where it
# changes (a running sum over the steps of SUMMARY_VIEWS, one row per second), then per slot
# the largest of those, the earliest second reaching it, the number live after the slot's last
# change and the slot's first change. The selector folds the slots into local hours or dates:
# a bucket is a whole number of slots, and the count at a bucket's first instant is the one
# carried from the slots before unless a change falls on that very second.
CONCURRENCY_SLOTS = f"""
SELECT
    toStartOfFifteenMinutes(second) AS slot,
    max(live) AS peak,
    argMin(second, (-live, second)) AS peak_at,
    argMax(live, second) AS live_after,
    min(second) AS first_change
FROM
(
    SELECT
        second,
        sum(step) OVER (ORDER BY second ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS live
    FROM
    (
        SELECT change.1 AS second, sum(change.2) AS step
        FROM ({VIEWS_OF_WINDOW})
        ARRAY JOIN [(first_time, toInt64(1)), (last_time + 1, toInt64(-1))] AS change
        GROUP BY second
    )
)
GROUP BY slot
ORDER BY slot
"""

# One movie's views of the window (a prefix of the sort key, then the bucket range), folded
# into the retention curve's steps: a view is watched at every multiple of `bucket` from
# ceil(low / bucket) × bucket to floor(high / bucket) × bucket, so it adds 1 at the first of
# those indexes and takes 1 away after the last; sumMap adds the steps of all views per index
# (dropping those that cancel) and the selector's running sum gives the viewers per point.
RETENTION = """
SELECT
    count() AS views,
    sum(high - low) AS watched_seconds,
    max(high) AS highest,
    sumMap(
        [toUInt32(intDiv(low + %(bucket)s - 1, %(bucket)s)), toUInt32(intDiv(high, %(bucket)s) + 1)],
        [toInt64(1), toInt64(-1)]
    ) AS steps
FROM
(
    SELECT min(low) AS low, max(high) AS high
    FROM view_segments
    WHERE movie_id = %(movie_id)s AND bucket >= %(start)s AND bucket < %(end)s AND session_id IS NOT NULL
    GROUP BY session_id
)
"""

# Who is watching now: the views formed by the events of (since, as_of], those without a
# finish, per movie, with the users of their events. recent_events is sorted by time and holds
# two hours, so this reads the window's granules and nothing of the history.
REALTIME = """
SELECT movie_id, count() AS live_views, groupUniqArrayArray(users) AS users
FROM
(
    SELECT movie_id, groupUniqArray(user_id) AS users
    FROM recent_events
    WHERE event_time > %(since)s AND event_time <= %(as_of)s
    GROUP BY movie_id, session_id
    HAVING max(finish) = 0
)
GROUP BY movie_id
"""
