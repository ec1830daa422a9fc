"""Insert de-duplication: the raw table and every table a view fills from it remember the
block ids of their last 1,000 inserts (viewing/ddl_objects.py, INSERT_DEDUPLICATION).

With it, an insert of events sent again with its own insert_deduplication_token after it
failed half-way (the raw table took the rows, a view did not) writes only what is missing, in
every table (viewing/services.py). A setting only: nothing is rewritten, and the reverse
resets it to the engine's default (0, no window).
"""

from django.db import migrations

from viewing.ddl_migrations import operations

SINGLE_NODE = [
    (
        'ALTER TABLE viewing_events MODIFY SETTING non_replicated_deduplication_window = 1000',
        'ALTER TABLE viewing_events RESET SETTING non_replicated_deduplication_window',
    ),
    (
        'ALTER TABLE event_ids MODIFY SETTING non_replicated_deduplication_window = 1000',
        'ALTER TABLE event_ids RESET SETTING non_replicated_deduplication_window',
    ),
    (
        'ALTER TABLE popular_content_daily MODIFY SETTING non_replicated_deduplication_window = 1000',
        'ALTER TABLE popular_content_daily RESET SETTING non_replicated_deduplication_window',
    ),
    (
        'ALTER TABLE user_stats_daily MODIFY SETTING non_replicated_deduplication_window = 1000',
        'ALTER TABLE user_stats_daily RESET SETTING non_replicated_deduplication_window',
    ),
    (
        'ALTER TABLE events_daily MODIFY SETTING non_replicated_deduplication_window = 1000',
        'ALTER TABLE events_daily RESET SETTING non_replicated_deduplication_window',
    ),
    (
        'ALTER TABLE events_hourly MODIFY SETTING non_replicated_deduplication_window = 1000',
        'ALTER TABLE events_hourly RESET SETTING non_replicated_deduplication_window',
    ),
    (
        'ALTER TABLE view_segments MODIFY SETTING non_replicated_deduplication_window = 1000',
        'ALTER TABLE view_segments RESET SETTING non_replicated_deduplication_window',
    ),
    (
        'ALTER TABLE recent_events MODIFY SETTING non_replicated_deduplication_window = 1000',
        'ALTER TABLE recent_events RESET SETTING non_replicated_deduplication_window',
    ),
    (
        'ALTER TABLE events_quarter_hourly MODIFY SETTING non_replicated_deduplication_window = 1000',
        'ALTER TABLE events_quarter_hourly RESET SETTING non_replicated_deduplication_window',
    ),
]

CLUSTER = [
    (
        'ALTER TABLE viewing_events_local ON CLUSTER {cluster} MODIFY SETTING non_replicated_deduplication_window = 1000',
        'ALTER TABLE viewing_events_local ON CLUSTER {cluster} RESET SETTING non_replicated_deduplication_window',
    ),
    (
        'ALTER TABLE event_ids_local ON CLUSTER {cluster} MODIFY SETTING non_replicated_deduplication_window = 1000',
        'ALTER TABLE event_ids_local ON CLUSTER {cluster} RESET SETTING non_replicated_deduplication_window',
    ),
    (
        'ALTER TABLE popular_content_daily_local ON CLUSTER {cluster} MODIFY SETTING non_replicated_deduplication_window = 1000',
        'ALTER TABLE popular_content_daily_local ON CLUSTER {cluster} RESET SETTING non_replicated_deduplication_window',
    ),
    (
        'ALTER TABLE user_stats_daily_local ON CLUSTER {cluster} MODIFY SETTING non_replicated_deduplication_window = 1000',
        'ALTER TABLE user_stats_daily_local ON CLUSTER {cluster} RESET SETTING non_replicated_deduplication_window',
    ),
    (
        'ALTER TABLE events_daily_local ON CLUSTER {cluster} MODIFY SETTING non_replicated_deduplication_window = 1000',
        'ALTER TABLE events_daily_local ON CLUSTER {cluster} RESET SETTING non_replicated_deduplication_window',
    ),
    (
        'ALTER TABLE events_hourly_local ON CLUSTER {cluster} MODIFY SETTING non_replicated_deduplication_window = 1000',
        'ALTER TABLE events_hourly_local ON CLUSTER {cluster} RESET SETTING non_replicated_deduplication_window',
    ),
    (
        'ALTER TABLE view_segments_local ON CLUSTER {cluster} MODIFY SETTING non_replicated_deduplication_window = 1000',
        'ALTER TABLE view_segments_local ON CLUSTER {cluster} RESET SETTING non_replicated_deduplication_window',
    ),
    (
        'ALTER TABLE recent_events_local ON CLUSTER {cluster} MODIFY SETTING non_replicated_deduplication_window = 1000',
        'ALTER TABLE recent_events_local ON CLUSTER {cluster} RESET SETTING non_replicated_deduplication_window',
    ),
    (
        'ALTER TABLE events_quarter_hourly_local ON CLUSTER {cluster} MODIFY SETTING non_replicated_deduplication_window = 1000',
        'ALTER TABLE events_quarter_hourly_local ON CLUSTER {cluster} RESET SETTING non_replicated_deduplication_window',
    ),
]


class Migration(migrations.Migration):

    dependencies = [("viewing", "0004_events_quarter_hourly")]

    operations = operations(SINGLE_NODE, CLUSTER)
