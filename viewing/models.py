"""The raw viewing-event table, as a django-clickhouse-backend model.

The DDL is the truth: the table is declared in viewing/ddl.py (`VIEWING_EVENTS`) and created
from there by the migrations. This model serves the ORM (admin, look-ups) and the migration
state; its Meta repeats the declared engine, keys and indexes, and
tests/viewing/test_migrations.py checks that the ORM's DDL for it creates the same table. The
retention TTL lives only in the declaration (a model cannot say it). The aggregate tables and
views have no model: their AggregateFunction columns have no ORM field.
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
        # As declared in viewing/ddl.py (why the sort key is what it is: see there).
        engine = models.MergeTree(
            order_by=(Func(F("event_time"), function="toDate"), "user_id", "event_time"),
            partition_by=Func(F("event_time"), function="toYYYYMM"),
        )
        indexes = [
            models.Index(fields=["user_id"], name="idx_user_id", type=models.BloomFilter(0.01), granularity=1),
            models.Index(fields=["movie_id"], name="idx_movie_id", type=models.BloomFilter(0.01), granularity=1),
            models.Index(fields=["session_id"], name="idx_session_id", type=models.BloomFilter(0.01), granularity=1),
        ]

    def __str__(self):
        return f"{self.event_type} {self.movie_id} by {self.user_id} at {self.event_time}"
