"""The whole ClickHouse schema: the raw table (model ViewingEvent), the de-duplication index,
the aggregate tables and their materialized views.

The model's state comes from CreateModel; the tables themselves from viewing/ddl.py, so the
DDL (TTL, codecs, views) is exactly the SQL written there and in clickhouse/schema.sql.
"""

import clickhouse_backend.models
import django.db.models.manager
from django.conf import settings
from django.db import migrations, models

from viewing import ddl


class Migration(migrations.Migration):

    initial = True

    dependencies = [
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ViewingEvent',
                    fields=[
                        ('id', clickhouse_backend.models.UUIDField(primary_key=True, serialize=False)),
                        ('user_id', clickhouse_backend.models.UUIDField()),
                        ('movie_id', clickhouse_backend.models.UUIDField()),
                        ('event_type', clickhouse_backend.models.StringField(low_cardinality=True)),
                        ('position_seconds', clickhouse_backend.models.UInt32Field(default=0)),
                        ('event_time', clickhouse_backend.models.DateTimeField()),
                        ('session_id', clickhouse_backend.models.UUIDField(blank=True, null=True)),
                        ('metadata', clickhouse_backend.models.StringField(default='{}')),
                        ('created_at', clickhouse_backend.models.DateTimeField()),
                    ],
                    options={
                        'db_table': 'viewing_events',
                        'ordering': ['-event_time'],
                        'engine': clickhouse_backend.models.MergeTree(order_by=(models.Func(models.F('event_time'), function='toDate'), 'user_id', 'event_time'), partition_by=models.Func(models.F('event_time'), function='toYYYYMM')),
                        'indexes': [clickhouse_backend.models.Index(fields=['user_id'], granularity=1, name='idx_user_id', type=clickhouse_backend.models.BloomFilter(0.01)), clickhouse_backend.models.Index(fields=['movie_id'], granularity=1, name='idx_movie_id', type=clickhouse_backend.models.BloomFilter(0.01)), clickhouse_backend.models.Index(fields=['session_id'], granularity=1, name='idx_session_id', type=clickhouse_backend.models.BloomFilter(0.01))],
                    },
                    managers=[
                        ('objects', django.db.models.manager.Manager()),
                        ('_overwrite_base_manager', django.db.models.manager.Manager()),
                    ],
                ),
            ],
            database_operations=[
                migrations.RunSQL(sql, reverse)
                for sql, reverse in ddl.statements(settings.RETENTION_DAYS, settings.CLICKHOUSE_CLUSTER, ddl.INITIAL)
            ],
        ),
    ]
