"""Named, parametrized SQL for the viewing data (clickhouse-driver %(name)s parameters).

User input is only ever passed as parameters, never formatted into the text.
"""

from viewing.ddl_time_zones import MOVIE, VIEWER

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

# Trends and peak hours: a local bucket (hour, date, ISO week, month; for peak hours the local
# hour of day) is a set of whole UTC quarter hours, because every zone's offset and every change
# of offset falls on a quarter hour. The reads cover each bucket with the coarsest rows that lie
# wholly inside it and inside the window, since fewer, coarser uniq states merge faster:
# - trends: the UTC dates Window.day_buckets() lists (every date in UTC; most dates of a week or
#   month elsewhere) from events_daily, each with its bucket (`days`, `day_buckets`); then the
#   window's other whole UTC hours from trends_hourly, except those two buckets share
#   (`split_hours`, Window.split_hours: 18:00-19:00 UTC holds a Kathmandu midnight); and the
#   quarter hours of those and of the window's ragged ends (`quarters`, Window.quarters) from
#   events_quarter_hourly. The lists are sets (IN), looked up once per row, and `quarters` is
#   a set of primary-key values, so only their granules are read;
# - peak hours: trends_hourly when every UTC hour of the window is one local hour (UTC and the
#   whole-hour zones: Europe/Moscow, America/New_York, ...), else events_quarter_hourly (+05:45).
# A row is used only where its whole span falls in one bucket, so every count stays exact.
#
# The local time of a quarter hour is its UTC time plus the zone's offset then: `transitions`
# (epoch seconds at which the offset changes, with a sentinel after the window) and `offsets`
# (seconds) come from Window.shift(), computed in Python from its time-zone database, so no
# zone rule is looked up in ClickHouse. `start`/`end` bound the window ([start, end), UTC).


def _local_seconds(t):
    """SQL: the local time of the DateTime expression `t`, as seconds since the epoch."""
    return (
        f"(toInt64(toUnixTimestamp({t}))"
        f" + %(offsets)s[arrayCount(x -> x <= toUnixTimestamp({t}), %(transitions)s) + 1])"
    )


def _local_date(t):
    return f"toDate(toDateTime({_local_seconds(t)}, 'UTC'))"


# The bucket of each interval, as the key Window.buckets() gives: a local date (day, the Monday
# of the ISO week, the first of the month), for hours the epoch second at which the local hour
# starts (local hours are 45 minutes off UTC hours in +05:45), and the local hour of day.
BUCKETS = {
    "day": _local_date,
    "hour": lambda t: f"(toInt64(toUnixTimestamp({t})) - modulo({_local_seconds(t)}, 3600))",
    "week": lambda t: f"toMonday({_local_date(t)})",
    "month": lambda t: f"toStartOfMonth({_local_date(t)})",
    "hour_of_day": lambda t: f"intDiv(modulo({_local_seconds(t)}, 86400), 3600)",
}

_TREND_COLUMNS = """
    sum(starts) AS starts,
    sum(finishes) AS finishes,
    sum(events) AS total_events,
    uniqMerge(users) AS unique_users,
    uniqMerge(movies) AS unique_movies"""


def _trends(interval):
    # No UTC date lies within one local hour: hourly trends start at the hourly table.
    days = "" if interval == "hour" else """
    SELECT
        transform(day, CAST(%(day_list)s, 'Array(Date)'), CAST(%(day_buckets)s, 'Array(Date)'), toDate(0)) AS bucket,
        starts, finishes, events, users, movies
    FROM events_daily
    WHERE day IN %(days)s
    UNION ALL"""
    return f"""
SELECT bucket,{_TREND_COLUMNS}
FROM
({days}
    SELECT {BUCKETS[interval]("hour")} AS bucket, starts, finishes, events, users, movies
    FROM trends_hourly
    WHERE hour >= %(start)s AND hour + INTERVAL 1 HOUR <= %(end)s
      AND toDate(hour) NOT IN %(days)s AND hour NOT IN %(split_hours)s
    UNION ALL
    SELECT {BUCKETS[interval]("quarter")} AS bucket, starts, finishes, events, users, movies
    FROM events_quarter_hourly
    WHERE quarter IN %(quarters)s
)
GROUP BY bucket
ORDER BY bucket
"""


# One statement per interval (composed here from the constants above, never from input).
TRENDS = {interval: _trends(interval) for interval in ("day", "hour", "week", "month")}

# Trends by day, week or month where UTC days do not fit the buckets (every zone but UTC for
# days; the weeks and months of a zone at their edges): the counters from the quarter hours,
# and the distinct viewers and movies from active_span_daily (viewing/ddl_time_zones.py:
# per UTC day, each viewer's and movie's first and last quarter hour). Each UTC day of the
# window is cut at most once, at quarter `cut` (Window.day_pieces; the arrays hold one entry
# per UTC day from `span_first`, looked up by position, which costs less than `transform`):
# an id is in the bucket `before` when its first quarter lies before the cut, in `after` when
# its last lies at or after it; 1970-01-01 marks a piece outside the window. A viewer in the evening of one UTC day
# and the morning of the next is one viewer of that local date (uniq per bucket). One pass over
# ~10,000 rows a day where the hourly states held ~40,000 entries a Kathmandu date (10M events).
_SPAN_BUCKETS = """
    SELECT kind, id, first, last, toUInt32(day - toDate(%(span_first)s)) + 1 AS i,
        CAST(%(span_cuts)s, 'Array(UInt8)')[i] AS cut,
        CAST(%(span_before)s, 'Array(Date)')[i] AS before,
        CAST(%(span_after)s, 'Array(Date)')[i] AS after
    FROM active_span_daily
    WHERE day >= %(span_first)s AND day < %(span_end)s"""


def _trends_by_span(interval):
    # The counters (sums) straight from the quarter hours of the window: one range of ~3,000
    # small rows costs less than the three-table cover above, whose parameter sets and branches
    # cost more to plan than these sums to add up (measured ~4 against ~13 ms at 10M).
    return f"""
SELECT bucket, sum(starts), sum(finishes), sum(total_events), sum(unique_users), sum(unique_movies)
FROM
(
    SELECT {BUCKETS[interval]("quarter")} AS bucket,
        sum(starts) AS starts, sum(finishes) AS finishes, sum(events) AS total_events,
        toUInt64(0) AS unique_users, toUInt64(0) AS unique_movies
    FROM events_quarter_hourly
    WHERE quarter >= %(start)s AND quarter < %(end)s
    GROUP BY bucket
    UNION ALL
    SELECT bucket, toUInt64(0), toUInt64(0), toUInt64(0),
        uniqIf(id, kind = {VIEWER}) AS unique_users, uniqIf(id, kind = {MOVIE}) AS unique_movies
    FROM
    ({_SPAN_BUCKETS}
    )
    ARRAY JOIN [if(first < cut, before, toDate(0)), if(last >= cut, after, toDate(0))] AS bucket
    WHERE bucket != toDate(0)
    GROUP BY bucket
)
GROUP BY bucket
ORDER BY bucket
"""


TRENDS_BY_SPAN = {interval: _trends_by_span(interval) for interval in ("day", "week", "month")}

# The same where the zone's offset is one number over the window (Kathmandu, Kolkata always; New
# York between its clock changes): every UTC day is cut at the same quarter (`span_cut`), the
# quarters before it have the local date day + `span_shift`, those from it on the next one, so
# the bucket is arithmetic instead of three array look-ups per row (~20 % less CPU at 10M);
# local dates outside [`span_from`, `span_to`] are the window's edges.
_OF_LOCAL_DATE = {"day": "{}", "week": "toMonday({})", "month": "toStartOfMonth({})"}


def _trends_by_constant_span(interval):
    span = f"""
    SELECT {_OF_LOCAL_DATE[interval].format("local")} AS bucket, toUInt64(0), toUInt64(0), toUInt64(0),
        uniqIf(id, kind = {VIEWER}) AS unique_users, uniqIf(id, kind = {MOVIE}) AS unique_movies
    FROM active_span_daily
    ARRAY JOIN [if(first < %(span_cut)s, day + %(span_shift)s, toDate(0)),
                if(last >= %(span_cut)s, day + (%(span_shift)s + 1), toDate(0))] AS local
    WHERE day >= %(span_first)s AND day < %(span_end)s AND local BETWEEN %(span_from)s AND %(span_to)s
    GROUP BY bucket"""
    general = _trends_by_span(interval)
    i = general.index("    SELECT bucket, toUInt64(0), toUInt64(0), toUInt64(0),")
    j = general.index("    GROUP BY bucket\n)") + len("    GROUP BY bucket")
    return general[:i] + span.lstrip("\n") + general[j:]


TRENDS_BY_CONSTANT_SPAN = {interval: _trends_by_constant_span(interval) for interval in ("day", "week", "month")}

# Peak hours: the window folded onto the local hour of day (0..23), merging the user states of
# the same hour across days (a viewer seen at 21:00 on two days is one viewer of hour 21). On a
# day whose clock goes back both passes through the repeated hour fall in that one hour.
_PEAK_HOURS = """
SELECT
    {bucket} AS hour_of_day,
    sum(events) AS events_count,
    uniqMerge(users) AS unique_users
FROM {table}
WHERE {time} >= %(start)s AND {time} < %(end)s
GROUP BY hour_of_day
ORDER BY hour_of_day
"""
PEAK_HOURS = {
    "hourly": _PEAK_HOURS.format(bucket=BUCKETS["hour_of_day"]("hour"), table="trends_hourly", time="hour"),
    "quarterly": _PEAK_HOURS.format(
        bucket=BUCKETS["hour_of_day"]("quarter"), table="events_quarter_hourly", time="quarter"
    ),
}

# Peak hours in a zone off whole hours (+05:45, +05:30) whose offset does not change in the
# window: the events from the quarter-hour sums as above, the viewers from active_span_daily's
# quarter bits. Each viewer's bits of the window's days are OR-ed into one 96-bit day (the
# first and last UTC dates masked to the window: Window.hour_of_day_quarters), then turned into
# the local hours of day they touch (local quarter = UTC quarter + `quarter_shift`, mod 96);
# each (viewer, hour) counts once. ~10,000 rows a day into ~20,000 viewers, where merging the
# 2,880 quarter-hourly states of 30 dates cost ~2.5 × the 720 hourly ones UTC merges (10M).
PEAK_HOURS["span"] = f"""
SELECT hour_of_day, sum(events_count) AS events_count, sum(unique_users) AS unique_users
FROM
(
    SELECT {BUCKETS["hour_of_day"]("quarter")} AS hour_of_day, sum(events) AS events_count,
        toUInt64(0) AS unique_users
    FROM events_quarter_hourly
    WHERE quarter >= %(start)s AND quarter < %(end)s
    GROUP BY hour_of_day
    UNION ALL
    SELECT hour_of_day, toUInt64(0), count()
    FROM
    (
        SELECT id, groupBitOr(bitAnd(quarters, multiIf(
            day = %(first_day)s, toUInt128(%(first_mask)s),
            day = %(last_day)s, toUInt128(%(last_mask)s),
            bitNot(toUInt128(0))))) AS seen
        FROM active_span_daily
        WHERE day >= %(first_day)s AND day <= %(last_day)s AND kind = {VIEWER}
        GROUP BY id
    )
    ARRAY JOIN arrayDistinct(arrayMap(q -> intDiv(modulo(q + %(quarter_shift)s, 96), 4),
                                      bitPositionsToArray(seen))) AS hour_of_day
    GROUP BY hour_of_day
)
GROUP BY hour_of_day
ORDER BY hour_of_day
"""
