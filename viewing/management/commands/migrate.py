"""`migrate` for both databases: Django's own tables and the ClickHouse schema in one command."""

from django.core.management.commands import migrate


class Command(migrate.Command):
    help = "Applies migrations to Django's database and to ClickHouse (--database: only that one)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(database=None)

    def execute(self, *args, **options):
        if options["database"] is not None:
            return super().execute(*args, **options)
        for alias in ("default", "clickhouse"):
            if options["verbosity"] >= 1:
                self.stdout.write(self.style.MIGRATE_HEADING(f"Database {alias}:"))
            super().execute(*args, **{**options, "database": alias})
