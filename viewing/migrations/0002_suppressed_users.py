"""The suppression list: viewers erased on request, whose later events are not stored.

Creates suppressed_users (viewing/ddl.py); the SQL is frozen here on purpose (written by
`python -m viewing.ddl migration`).
"""

from django.db import migrations

from viewing.ddl_migrations import operations

SINGLE_NODE = [
    (
        """\
CREATE TABLE suppressed_users
(
    user_id UUID,
    suppressed_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY user_id""",
        'DROP TABLE suppressed_users',
    ),
]

CLUSTER = [
    (
        """\
CREATE TABLE suppressed_users_local ON CLUSTER {cluster}
(
    user_id UUID,
    suppressed_at DateTime('UTC')
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/suppressed_users_local', '{replica}')
ORDER BY user_id""",
        'DROP TABLE suppressed_users_local ON CLUSTER {cluster} SYNC',
    ),
    (
        """\
CREATE TABLE suppressed_users ON CLUSTER {cluster} AS suppressed_users_local
ENGINE = Distributed({cluster}, currentDatabase(), suppressed_users_local, cityHash64(user_id))""",
        'DROP TABLE suppressed_users ON CLUSTER {cluster} SYNC',
    ),
]


class Migration(migrations.Migration):

    dependencies = [("viewing", "0001_initial")]

    operations = operations(SINGLE_NODE, CLUSTER)
