"""Declarations of the time-zone tables (registered in viewing/ddl.py, which declares the
materialized views feeding them from the raw table with the SELECTs below).

Analytics windows are local dates of any IANA zone (viewing/windows.py). Every zone's offset,
and every change of offset, falls on a UTC quarter hour, so a local hour, date, week or month is
a set of whole quarter hours; the reads cover each bucket with the coarsest rows lying wholly
inside it: a UTC day (events_daily), a UTC hour (trends_hourly), a quarter hour
(events_quarter_hourly). docs/architecture.md, "Time zones and windows", says why and what it
costs.
"""

from viewing.ddl_objects import AGGREGATING_MERGE_TREE, INSERT_DEDUPLICATION, Table

COUNT = "SimpleAggregateFunction(sum, UInt64)"
UNIQ = "AggregateFunction(uniq, UUID)"
# The columns of events_daily, per quarter hour or hour.
_COLUMNS = (("events", COUNT), ("starts", COUNT), ("finishes", COUNT), ("users", UNIQ), ("movies", UNIQ))


def _select(bucket, name):
    return f"""
SELECT
    {bucket}(event_time) AS {name},
    count() AS events,
    countIf(event_type = 'start') AS starts,
    countIf(event_type = 'finish') AS finishes,
    uniqState(user_id) AS users,
    uniqState(movie_id) AS movies
FROM {{source}}
GROUP BY {name}
"""


# One row per UTC quarter hour: the parts of local buckets that no UTC hour or day fits (the
# hours two Kathmandu dates share, the ragged ends of a window), and peak hours in a zone off
# whole hours. 96 rows a day keeps the longest window (366 dates) at 35,136 rows.
EVENTS_QUARTER_HOURLY = Table(
    name="events_quarter_hourly",
    kind="aggregate",
    columns=(("quarter", "DateTime('UTC')"), *_COLUMNS),
    engine=AGGREGATING_MERGE_TREE,
    order_by="quarter",
    ttl_column="quarter",
    settings=(INSERT_DEDUPLICATION,),
)
EVENTS_QUARTER_HOURLY_SELECT = _select("toStartOfFifteenMinutes", "quarter")

# Trends in a zone that is not UTC: a local date is mostly whole UTC hours (all 24 in New York,
# 23 in Kathmandu, the rest quarter hours), so trends merge 24 to 27 states a day instead of
# 96 quarter hours. Same columns as events_daily, one row per UTC hour. Peak hours read it
# too (events and users per UTC hour, folded onto the hour of day) where every UTC hour is one
# local hour: a table of its own for them (events_hourly, dropped by migration 0007) wrote
# the same hourly rows again on every insert.
TRENDS_HOURLY = Table(
    name="trends_hourly",
    kind="aggregate",
    columns=(("hour", "DateTime('UTC')"), *_COLUMNS),
    engine=AGGREGATING_MERGE_TREE,
    order_by="hour",
    ttl_column="hour",
    settings=(INSERT_DEDUPLICATION,),
)
TRENDS_HOURLY_SELECT = _select("toStartOfHour", "hour")


# Distinct viewers and movies of local dates, weeks and months off UTC. A uniq state per UTC
# hour repeats a viewer in every hour they watched (a Kathmandu date is 23 hourly states + 4
# quarter-hourly ones, ~4 × the entries of one daily state at 10M events), and merging states
# costs per entry. A local date is at most two pieces of UTC days: the quarter hours before
# its cut (18:15 UTC in Kathmandu) and those after. So for each UTC day and each viewer (kind
# 0) or movie (kind 1) with an event that day: the first and the last quarter hour (0 … 95)
# with one. The viewer is in the piece before quarter k if first < k, after it if last >= k:
# one row per viewer and day, exact for any cut on a quarter hour, and a read is one pass over
# the window's days (~10,000 viewers a day at 10M events) feeding a plain uniq per bucket.
# `quarters` has bit q set for every quarter hour q with an event: the local hours of day a
# viewer was seen in, for peak hours in a zone off whole hours. Sorted by (day, kind, id): a
# window is a key range.
ACTIVE_SPAN_DAILY = Table(
    name="active_span_daily",
    kind="aggregate",
    columns=(
        ("day", "Date"),
        ("kind", "UInt8"),
        ("id", "UUID"),
        ("first", "SimpleAggregateFunction(min, UInt8)"),
        ("last", "SimpleAggregateFunction(max, UInt8)"),
        ("quarters", "SimpleAggregateFunction(groupBitOr, UInt128)"),
    ),
    engine=AGGREGATING_MERGE_TREE,
    order_by="(day, kind, id)",
    ttl_column="day",
    settings=(INSERT_DEDUPLICATION,),
)
# Kinds of active_span_daily rows.
VIEWER, MOVIE = 0, 1
# modulo(), not %: the rebuild runs this SELECT with %(name)s parameters (viewing/aggregates.py).
_QUARTER_OF_DAY = "toUInt8(intDiv(modulo(toUnixTimestamp(event_time), 86400), 900))"
ACTIVE_SPAN_DAILY_SELECT = f"""
SELECT
    toDate(event_time) AS day,
    who.1 AS kind,
    who.2 AS id,
    min({_QUARTER_OF_DAY}) AS first,
    max({_QUARTER_OF_DAY}) AS last,
    groupBitOr(bitShiftLeft(toUInt128(1), {_QUARTER_OF_DAY})) AS quarters
FROM {{source}}
ARRAY JOIN [(toUInt8({VIEWER}), user_id), (toUInt8({MOVIE}), movie_id)] AS who
GROUP BY day, kind, id
"""
