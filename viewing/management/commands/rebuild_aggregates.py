"""`rebuild_aggregates`: recompute every table the raw events feed, for a range of UTC days."""

import time
from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError

from viewing.aggregates import aggregates_rebuild

MAX_DAYS = 3660


def _date(text):
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a date (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = (
        "Recomputes every table the raw events feed (event_ids and the aggregates) for the UTC "
        "days FROM … TO from the raw table, with the views' own SELECTs. Inserts of this process "
        "wait meanwhile; on a ClickHouse server stop other writers first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="first", required=True, metavar="DATE", help="first UTC day (YYYY-MM-DD)")
        parser.add_argument("--to", dest="last", required=True, metavar="DATE", help="last UTC day (YYYY-MM-DD)")
        parser.add_argument("--database", default="clickhouse", help="the ClickHouse database alias (clickhouse)")

    def handle(self, *args, first, last, database, **options):
        first, last = _date(first), _date(last)
        if first > last:
            raise CommandError("--from must not be after --to.")
        count = (last - first).days + 1
        if count > MAX_DAYS:
            raise CommandError(f"At most {MAX_DAYS} days at once.")
        started = time.monotonic()
        seconds = aggregates_rebuild(days=[first + timedelta(days=n) for n in range(count)], using=database)
        if options["verbosity"] >= 1:
            for table, took in seconds.items():
                self.stdout.write(f"rebuilt {table} ({took:.2f} s)")
            self.stdout.write(f"Rebuilt {len(seconds)} tables for {first} … {last} ({count} days) "
                              f"in {time.monotonic() - started:.1f} s.")
