"""`generate_events`: synthetic viewing events (viewing.generator) into ClickHouse, in batches."""

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from analytics_site.chdb_backend.engine import EngineLocked
from viewing.generator import event_batches
from viewing.services import events_store


class Command(BaseCommand):
    help = (
        "Writes N synthetic viewing events over the last D days (Zipf-like movie popularity, "
        "sessions start → progress … → finish or abandoned, daily and weekly cycles). "
        "The same --seed gives the same events and ids, so re-running it stores nothing new."
    )

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=100_000, metavar="N", help="events in all (100000)")
        parser.add_argument("--days", type=int, default=30, metavar="D", help="UTC days ending today (30)")
        parser.add_argument("--users", type=int, default=5_000, metavar="U", help="distinct users (5000)")
        parser.add_argument("--movies", type=int, default=500, metavar="M", help="distinct movies (500)")
        parser.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (1)")
        parser.add_argument("--batch-size", type=int, default=100_000, metavar="B", help="rows per insert (100000)")
        parser.add_argument("--database", default="clickhouse", help="the ClickHouse database alias (clickhouse)")

    def handle(self, *args, events, days, users, movies, seed, batch_size, database, **options):
        for name, value, low, high in (
            ("--events", events, 1, None),
            ("--days", days, 1, 365),
            ("--users", users, 1, None),
            ("--movies", movies, 1, None),
            ("--batch-size", batch_size, 1, None),
        ):
            if value < low or (high is not None and value > high):
                bounds = f"between {low} and {high}" if high else f"at least {low}"
                raise CommandError(f"{name} must be {bounds}.")
        started = time.monotonic()
        stored = 0
        batches = event_batches(events=events, days=days, users=users, movies=movies, seed=seed, batch_size=batch_size)
        try:
            with tqdm(total=events, unit="events", unit_scale=True, disable=options["verbosity"] < 1) as bar:
                for batch in batches:
                    stored += events_store(events=batch, path="generator", using=database)
                    bar.update(len(batch))
        except EngineLocked as e:
            raise CommandError(str(e)) from e
        if options["verbosity"] >= 1:
            seconds = time.monotonic() - started
            self.stdout.write(
                f"generated {events} events, stored {stored} new "
                f"({events - stored} already there) in {seconds:.1f} s"
            )
