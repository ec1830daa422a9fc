"""`migrate` for both databases: Django's own tables and the ClickHouse schema in one command."""

from django.core.management.commands import migrate
from django.db import connections, router


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
            self.alias, self.recorded_only = alias, []
            super().execute(*args, **{**options, "database": alias})
            if self.recorded_only and options["verbosity"] >= 1:
                apps = ", ".join(sorted({m.app_label for m in self.recorded_only}))
                count = len(self.recorded_only)
                self.stdout.write(
                    f"  {count} migration{'s' if count > 1 else ''} of {apps} only recorded as applied "
                    f"(their tables are in another database; nothing was created in {alias})."
                )

    def migration_progress_callback(self, action, migration=None, fake=False):
        # Django runs every app's migrations on every database and lets the router skip the
        # operations; "Applying admin.0001_initial... OK" under clickhouse would claim tables
        # that are not there. Those lines are counted and summed up in one instead.
        if migration is not None and not router.allow_migrate(self.alias, migration.app_label):
            if action in ("apply_success", "unapply_success"):
                self.recorded_only.append(migration)
            return
        super().migration_progress_callback(action, migration, fake)


def database_ensure(alias):
    """CREATE DATABASE IF NOT EXISTS for a ClickHouse alias, through a connection to the
    server's `default` database (the ClickHouse image creates it from CLICKHOUSE_DB too)."""
    connection = connections[alias]
    name = connection.settings_dict["NAME"]
    with connection._nodb_cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS {connection.ops.quote_name(name)}")
