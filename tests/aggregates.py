"""Every table the raw events feed, as stored and as a plain-Python reference computes it from
the events that must be stored: the check behind "acknowledged means stored, exactly once,
in the raw table and in every aggregate".

`stored_tables()` reads each table grouped by its key (merges are eventual, so the rows of one
key are folded here the way the reads fold them); `expected_tables(events)` computes the same
from event dicts (id, user_id, movie_id, event_type, position_seconds, event_time as a naive
UTC datetime, session_id), independently of the service's SQL. A table the raw events feed
that neither knows fails `test_every_fed_table_is_checked`.
"""

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.db import connections


def query(sql, params=None):
    # Not tests.conftest's: this module also runs in a subprocess on another data directory.
    with connections["clickhouse"].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


STORED_SQL = {
    "viewing_events": "SELECT toString(id), toString(user_id), toString(movie_id), event_type, position_seconds, "
                      "toString(event_time), ifNull(toString(session_id), 'None') FROM viewing_events ORDER BY 1",
    "event_ids": "SELECT toString(id), toString(event_time) FROM event_ids ORDER BY 1",
    "popular_content_daily": "SELECT toString(day), toString(movie_id), sum(starts), sum(finishes), "
                             "uniqMerge(viewers) FROM popular_content_daily GROUP BY day, movie_id ORDER BY 1, 2",
    "user_stats_daily": "SELECT toString(user_id), toString(day), toString(movie_id), sum(events), sum(starts), "
                        "sum(finishes), sum(watch_seconds) FROM user_stats_daily "
                        "GROUP BY user_id, day, movie_id ORDER BY 1, 2, 3",
    "events_daily": "SELECT toString(day), sum(events), sum(starts), sum(finishes), uniqMerge(users), "
                    "uniqMerge(movies) FROM events_daily GROUP BY day ORDER BY 1",
    "events_quarter_hourly": "SELECT toString(quarter), sum(events), sum(starts), sum(finishes), uniqMerge(users), "
                             "uniqMerge(movies) FROM events_quarter_hourly GROUP BY quarter ORDER BY 1",
    "trends_hourly": "SELECT toString(hour), sum(events), sum(starts), sum(finishes), uniqMerge(users), "
                     "uniqMerge(movies) FROM trends_hourly GROUP BY hour ORDER BY 1",
    "view_segments": "SELECT toString(movie_id), toString(bucket), ifNull(toString(session_id), 'None'), toString(user_id), "
                     "toString(min(first_time)), toString(max(last_time)), min(low), max(high), sum(events), "
                     "sum(starts), sum(finishes) FROM view_segments "
                     "GROUP BY movie_id, bucket, session_id, user_id ORDER BY 1, 2, 3, 4",
    "active_span_daily": "SELECT toString(day), kind, toString(id), min(first), max(last), "
                         "toString(groupBitOr(quarters)) FROM active_span_daily GROUP BY day, kind, id "
                         "ORDER BY 1, 2, 3",
    # Only the last two hours are kept (the view's WHERE, then a TTL): compared from a cutoff
    # a little later, so an event near the edge counts on neither side.
    "recent_events": "SELECT toString(event_time), toString(movie_id), toString(session_id), toString(user_id), "
                     "finish FROM recent_events WHERE event_time > %(cutoff)s ORDER BY 1, 2, 3, 4, 5",
}
RAW_EVENTS = ("SELECT id, user_id, movie_id, event_type, position_seconds, event_time, session_id "
              "FROM viewing_events ORDER BY id")


def recent_cutoff():
    return datetime.now(UTC).replace(microsecond=0, tzinfo=None) - timedelta(minutes=110)


def stored_tables(cutoff):
    return {name: [list(row) for row in query(sql, {"cutoff": cutoff})] for name, sql in STORED_SQL.items()}


def stored_events():
    """The raw table's rows as event dicts."""
    columns = ("id", "user_id", "movie_id", "event_type", "position_seconds", "event_time", "session_id")
    return [dict(zip(columns, row, strict=True)) for row in query(RAW_EVENTS)]


def tables_and_reference(events):
    """(what every table holds, what it must hold when exactly `events` are stored)."""
    cutoff = recent_cutoff()
    return stored_tables(cutoff), expected_tables(events, cutoff)


def _text(moment):
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def expected_tables(events, cutoff):
    """What STORED_SQL must read when exactly `events` are stored (ids unique)."""
    raw, ids = [], []
    popular = defaultdict(lambda: [0, 0, set()])
    users = defaultdict(lambda: [0, 0, 0, 0])
    daily = defaultdict(lambda: [0, 0, 0, set(), set()])
    quarters = defaultdict(lambda: [0, 0, 0, set(), set()])
    trends = defaultdict(lambda: [0, 0, 0, set(), set()])
    segments = {}
    recent = []
    spans = {}  # (day, kind: 0 viewer / 1 movie, id) -> [first, last, bits] of its UTC quarter hours
    for e in events:
        t, user, movie, session = e["event_time"], str(e["user_id"]), str(e["movie_id"]), e["session_id"]
        session = None if session is None else str(session)
        start, finish, position = e["event_type"] == "start", e["event_type"] == "finish", e["position_seconds"]
        day, hour = t.strftime("%Y-%m-%d"), _text(t.replace(minute=0, second=0))
        raw.append([str(e["id"]), user, movie, e["event_type"], position, _text(t), str(session)])
        ids.append([str(e["id"]), _text(t)])
        p = popular[(day, movie)]
        p[0], p[1] = p[0] + start, p[1] + finish
        p[2].add(user)
        u = users[(user, day, movie)]
        u[0], u[1], u[2], u[3] = u[0] + 1, u[1] + start, u[2] + finish, u[3] + (position if finish else 0)
        d = daily[day]
        d[0], d[1], d[2] = d[0] + 1, d[1] + start, d[2] + finish
        d[3].add(user)
        d[4].add(movie)
        th = trends[hour]
        th[0], th[1], th[2] = th[0] + 1, th[1] + start, th[2] + finish
        th[3].add(user)
        th[4].add(movie)
        bucket = _text(t.replace(minute=t.minute - t.minute % 15, second=0))
        q = quarters[bucket]
        q[0], q[1], q[2] = q[0] + 1, q[1] + start, q[2] + finish
        q[3].add(user)
        q[4].add(movie)
        key = (movie, bucket, str(session), user)
        s = segments.get(key)
        if s is None:
            segments[key] = [t, t, position, position, 1, int(start), int(finish)]
        else:
            segments[key] = [min(s[0], t), max(s[1], t), min(s[2], position), max(s[3], position),
                             s[4] + 1, s[5] + start, s[6] + finish]
        if session is not None and t > cutoff:
            recent.append([_text(t), movie, session, user, int(finish)])
        quarter = (t.hour * 60 + t.minute) // 15
        for who in ((day, 0, user), (day, 1, movie)):
            first, last, bits = spans.get(who, (quarter, quarter, 0))
            spans[who] = (min(first, quarter), max(last, quarter), bits | 1 << quarter)
    return {
        "viewing_events": sorted(raw),
        "event_ids": sorted(ids),
        "popular_content_daily": [[d, m, s, f, len(v)] for (d, m), (s, f, v) in sorted(popular.items())],
        "user_stats_daily": [[u, d, m, *values] for (u, d, m), values in sorted(users.items())],
        "events_daily": [[d, n, s, f, len(us), len(ms)] for d, (n, s, f, us, ms) in sorted(daily.items())],
        "events_quarter_hourly": [[q, n, s, f, len(us), len(ms)] for q, (n, s, f, us, ms) in sorted(quarters.items())],
        "trends_hourly": [[h, n, s, f, len(us), len(ms)] for h, (n, s, f, us, ms) in sorted(trends.items())],
        "view_segments": [[*key, _text(v[0]), _text(v[1]), *v[2:]] for key, v in sorted(segments.items())],
        "recent_events": sorted(recent),
        "active_span_daily": [[*who, first, last, str(bits)] for who, (first, last, bits) in sorted(spans.items())],
    }
