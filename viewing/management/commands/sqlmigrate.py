"""`sqlmigrate` that prints a migration's SQL without reading the database's migration
history, so `sqlmigrate viewing 0001 --database clickhouse` works before `migrate` has
created the ClickHouse database (Django's own command first asks the database which
migrations are applied, and a missing ClickHouse database is an error)."""

from django.core.management.commands import sqlmigrate
from django.db.migrations.loader import MigrationLoader


class HistoryFreeLoader(MigrationLoader):
    """The migration graph from the files alone: the SQL of a migration does not depend on
    which migrations are applied (squashed ones are not replaced either, as in sqlmigrate)."""

    def __init__(self, connection, **kwargs):
        super().__init__(None, **kwargs)
        self.connection = connection  # collect_sql builds statements with its schema editor


class Command(sqlmigrate.Command):
    def handle(self, *args, **options):
        loader_class = sqlmigrate.MigrationLoader
        # Django's handle() builds its loader from the module-level name: swap it for the
        # duration of this call, and keep the rest of its checks and output unchanged.
        sqlmigrate.MigrationLoader = HistoryFreeLoader
        try:
            return super().handle(*args, **options)
        finally:
            sqlmigrate.MigrationLoader = loader_class
