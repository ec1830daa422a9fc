"""The raw viewing-event table, as a django-clickhouse-backend model.

The aggregate tables and materialized views behind the analytics are plain SQL
(viewing/sql/schema.py): their AggregateFunction columns have no ORM field.
"""

from clickhouse_backend import models
from django.db.models import F, Func


class ViewingEvent(models.ClickhouseModel):
    id = models.UUIDField(primary_key=True)
    user_id = models.UUIDField()
    movie_id = models.UUIDField()
    event_type = models.StringField(low_cardinality=True)
    position_seconds = models.UInt32Field(default=0)
    event_time = models.DateTimeField()
    session_id = models.UUIDField(null=True, blank=True)
    metadata = models.StringField(default="{}")
    created_at = models.DateTimeField()

    class Meta:
        db_table = "viewing_events"
        ordering = ["-event_time"]
        # Sort key: the analytics read the materialized views, so the raw table serves
        # the admin, which pages by date and filters by day, and one user's rows of a day.
        # A day prefix prunes both to the days concerned; user_id next keeps a user's
        # events of a day in one or two granules. (De-duplication reads event_ids.)
        engine = models.MergeTree(
            order_by=(Func(F("event_time"), function="toDate"), "user_id", "event_time"),
            partition_by=Func(F("event_time"), function="toYYYYMM"),
        )
        # Bloom filters let exact UUID searches (admin) skip granules outside the sort key.
        indexes = [
            models.Index(fields=["user_id"], name="idx_user_id", type=models.BloomFilter(0.01), granularity=1),
            models.Index(fields=["movie_id"], name="idx_movie_id", type=models.BloomFilter(0.01), granularity=1),
            models.Index(fields=["session_id"], name="idx_session_id", type=models.BloomFilter(0.01), granularity=1),
        ]

    def __str__(self):
        return f"{self.event_type} {self.movie_id} by {self.user_id} at {self.event_time}"
