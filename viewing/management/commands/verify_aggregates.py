"""`verify_aggregates`: every table the raw events feed, compared with the raw table by UTC day."""

import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from viewing import clock
from viewing.aggregates import aggregates_verify


class Command(BaseCommand):
    help = (
        "Compares every table the raw events feed (event_ids and the aggregates) with what the raw "
        "table implies, for the last N UTC days, and prints the drift per table and day. Exits 1 "
        "on drift; `rebuild_aggregates` mends the days it names."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=7, metavar="N", help="UTC days ending today (7)")
        parser.add_argument("--database", default="clickhouse", help="the ClickHouse database alias (clickhouse)")

    def handle(self, *args, days, database, **options):
        if not 1 <= days <= 3660:
            raise CommandError("--days must be between 1 and 3660.")
        today = clock.today()
        wanted = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
        started = time.monotonic()
        drifts = aggregates_verify(days=wanted, using=database)
        for drift in drifts:
            self.stdout.write(str(drift))
        seconds = time.monotonic() - started
        if drifts:
            first, last = min(d.day for d in drifts), max(d.day for d in drifts)
            raise CommandError(
                f"{len(drifts)} table-days drift from the raw table; mend them with "
                f"`manage.py rebuild_aggregates --from {first} --to {last}`.", returncode=1,
            )
        if options["verbosity"] >= 1:
            self.stdout.write(f"No drift: every table the raw events feed matches the raw table over "
                              f"{wanted[0]} … {wanted[-1]} ({seconds:.1f} s).")
