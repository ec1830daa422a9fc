"""The engagement endpoints' statements for the benchmark, beside the same answers computed
from the raw table (viewing_events) to show what view_segments and recent_events save.

An endpoint that runs several statements (the summary: counters, then views) is a tuple,
timed as the sum of its statements. Same parameters as the service's statements.
"""

from viewing import queries_engagement as q

# The views of a window from the raw events: the sort key's date prefix prunes to the window's
# days, then every event of them is read.
RAW_VIEWS = """
    SELECT
        min(event_time) AS first_time,
        max(event_time) AS last_time,
        min(position_seconds) AS low,
        max(position_seconds) AS high
    FROM viewing_events
    WHERE toDate(event_time) BETWEEN toDate(%(start)s) AND toDate(%(end)s)
      AND event_time >= %(start)s AND event_time < %(end)s AND session_id IS NOT NULL
    GROUP BY movie_id, session_id
"""

RAW_SUMMARY_COUNTERS = """
SELECT
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    count() AS total_events,
    uniq(user_id) AS unique_users,
    uniq(movie_id) AS unique_movies
FROM viewing_events
WHERE toDate(event_time) BETWEEN toDate(%(start)s) AND toDate(%(end)s)
  AND event_time >= %(start)s AND event_time < %(end)s
"""

# One movie: the bloom filter on movie_id skips granules without it.
RAW_RETENTION = q.RETENTION.replace(
    """    SELECT min(low) AS low, max(high) AS high
    FROM view_segments
    WHERE movie_id = %(movie_id)s AND bucket >= %(start)s AND bucket < %(end)s AND session_id IS NOT NULL
    GROUP BY session_id""",
    """    SELECT min(position_seconds) AS low, max(position_seconds) AS high
    FROM viewing_events
    WHERE movie_id = %(movie_id)s AND toDate(event_time) BETWEEN toDate(%(start)s) AND toDate(%(end)s)
      AND event_time >= %(start)s AND event_time < %(end)s AND session_id IS NOT NULL
    GROUP BY session_id""",
)

# Realtime from the raw table: the date prefix of its key narrows it to today's events, all
# of which are read (the raw table is sorted by user within a day, not by time).
RAW_REALTIME = q.REALTIME.replace(
    """    FROM recent_events
    WHERE event_time > %(since)s AND event_time <= %(as_of)s""",
    """    FROM viewing_events
    WHERE toDate(event_time) BETWEEN toDate(%(since)s) AND toDate(%(as_of)s)
      AND event_time > %(since)s AND event_time <= %(as_of)s AND session_id IS NOT NULL""",
).replace("HAVING max(finish) = 0", "HAVING countIf(event_type = 'finish') = 0")


def _raw(statement):
    return statement.replace(q.VIEWS_OF_WINDOW, RAW_VIEWS)


for _statement, _raw_statement in ((q.RETENTION, RAW_RETENTION), (q.REALTIME, RAW_REALTIME)):
    if _statement == _raw_statement:
        raise AssertionError("bench/sql_engagement.py: a raw-table rewrite no longer matches the service's SQL")

# endpoint name → (the service's statements, the raw-table version)
ENDPOINT_SQL = {
    "summary": ((q.SUMMARY_COUNTERS, q.SUMMARY_VIEWS), (RAW_SUMMARY_COUNTERS, _raw(q.SUMMARY_VIEWS))),
    "retention": (q.RETENTION, RAW_RETENTION),
    "concurrency_hour_1d": (q.CONCURRENCY_SLOTS, _raw(q.CONCURRENCY_SLOTS)),
    "concurrency_day_30d": (q.CONCURRENCY_SLOTS, _raw(q.CONCURRENCY_SLOTS)),
    "realtime": (q.REALTIME, RAW_REALTIME),
}
