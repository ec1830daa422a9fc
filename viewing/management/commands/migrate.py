"""`migrate` for both databases: Django's own tables and the ClickHouse schema in one command."""

from django.core.management.commands import migrate
from django.db import connections


class Command(migrate.Command):
    help = "Applies migrations to Django's database and to ClickHouse (--database: only that one)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(database=None)

    def execute(self, *args, **options):
        if options["database"] is not None:
            aliases = [options["database"]]
        else:
            aliases = ["default", "clickhouse"]
        for alias in aliases:
            if options["verbosity"] >= 1 and len(aliases) > 1:
                self.stdout.write(self.style.MIGRATE_HEADING(f"Database {alias}:"))
            if connections[alias].vendor == "clickhouse":
                database_ensure(alias)
            super().execute(*args, **{**options, "database": alias})


def database_ensure(alias):
    """CREATE DATABASE IF NOT EXISTS for a ClickHouse alias, through a connection to the
    server's `default` database (the ClickHouse image creates it from CLICKHOUSE_DB too)."""
    connection = connections[alias]
    name = connection.settings_dict["NAME"]
    with connection._nodb_cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS {connection.ops.quote_name(name)}")
