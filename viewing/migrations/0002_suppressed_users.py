"""The suppression list: viewers erased on request, whose later events are not stored."""

from django.conf import settings
from django.db import migrations

from viewing import ddl


class Migration(migrations.Migration):

    dependencies = [
        ("viewing", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(sql, reverse)
        for sql, reverse in ddl.statements(settings.RETENTION_DAYS, settings.CLICKHOUSE_CLUSTER, ddl.SUPPRESSION)
    ]
