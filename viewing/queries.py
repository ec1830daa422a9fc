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
# this reads about one granule per id asked, whatever the size of the table.
STORED_IDS = """
SELECT id
FROM event_ids
WHERE id IN %(ids)s
"""
