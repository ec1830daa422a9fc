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
