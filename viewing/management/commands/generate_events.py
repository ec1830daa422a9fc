"""`generate_events`: synthetic viewing events (viewing.generator) into ClickHouse, in batches:
straight into the engine, or through the running server when it holds the embedded engine."""

import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connections
from tqdm import tqdm

from analytics_site.chdb_backend.engine import EngineLocked
from analytics_site.exceptions import database_error_summary, storage_error_cause
from viewing.batch_client import BatchClient, ServerError
from viewing.generator import event_batches
from viewing.services import events_store, unfinished_rebuild_hint


def _engine_locked(error):
    while error is not None:
        if isinstance(error, EngineLocked):
            return error
        error = error.__cause__ or error.__context__
    return None


class Command(BaseCommand):
    help = (
        "Writes N synthetic viewing events over the last D days (Zipf-like movie popularity, "
        "sessions start → progress … → finish or abandoned, daily and weekly cycles). "
        "The same --seed gives the same events and ids, so re-running it stores nothing new. "
        "When a running server holds the embedded data directory, the events go through its "
        "batch endpoint (--url)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=100_000, metavar="N", help="events in all (100000)")
        parser.add_argument("--days", type=int, default=30, metavar="D", help="UTC days ending today (30)")
        parser.add_argument("--users", type=int, default=5_000, metavar="U", help="distinct users (5000)")
        parser.add_argument("--movies", type=int, default=500, metavar="M", help="distinct movies (500)")
        parser.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (1)")
        parser.add_argument("--batch-size", type=int, default=100_000, metavar="B", help="rows per insert (100000)")
        parser.add_argument("--database", default="clickhouse", help="the ClickHouse database alias (clickhouse)")
        parser.add_argument(
            "--migrate", action="store_true",
            help="apply the migrations first when this process opens the data directory itself",
        )
        parser.add_argument(
            "--url", metavar="URL",
            help="the server to send the events to when another process holds the data directory "
                 "(default http://127.0.0.1:PORT)",
        )
        parser.add_argument(
            "--api-key", metavar="KEY",
            help="an ingest key for --url (default: none in the open mode of `make run`, else a "
                 "temporary key made for this run and deleted after it)",
        )

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
        self.verbose = options["verbosity"] >= 1
        batches = event_batches(events=events, days=days, users=users, movies=movies, seed=seed, batch_size=batch_size)
        locked = None
        try:
            with connections[database].cursor() as cursor:
                cursor.execute("SELECT 1")  # the pool connects on the first query
        except Exception as e:
            locked = _engine_locked(e)
            if locked is None and not options["migrate"]:
                raise  # e.g. no database yet: manage.py says to run migrate
        if locked is None:
            if options["migrate"]:
                call_command("migrate", verbosity=0, interactive=False)
            self.store_locally(batches, events, database)
        else:
            self.send_to_server(batches, events, options["url"], options["api_key"], locked)

    def _progress(self, events):
        return tqdm(total=events, unit="events", unit_scale=True, disable=not self.verbose)

    def store_locally(self, batches, events, database):
        started = time.monotonic()
        stored = 0
        try:
            with self._progress(events) as bar:
                for batch in batches:
                    stored += events_store(events=batch, path="generator", using=database)
                    bar.update(len(batch))
        except DatabaseError as e:
            # One line, exit status 1: the cause and how far it got. The failed batch is not
            # stored; re-running with the same --seed stores only what is missing.
            hint = unfinished_rebuild_hint()  # the raw table took rows a view did not
            raise CommandError(
                f"Storing events failed ({storage_error_cause(e)[1]}) after {stored} new events "
                f"were stored: {database_error_summary(e)}"
                + (f" Part of the failed batch reached the raw table only: once the cause is gone, "
                   f"re-run this command and then `{hint}`." if hint else "")
            ) from None
        seconds = time.monotonic() - started
        if self.verbose:
            self.stdout.write(
                f"generated {events} events, stored {stored} new ({events - stored} already there) "
                f"in {seconds:.1f} s ({events / seconds:,.0f} events/s)"
            )

    def send_to_server(self, batches, events, url, api_key, locked):
        """The data directory belongs to another process: if it is the server, post there."""
        host = settings.BIND_ADDRESS if settings.BIND_ADDRESS not in ("0.0.0.0", "::", "[::]") else "127.0.0.1"
        url = url or f"http://{host}:{settings.PORT}"
        temporary = None
        if not api_key and not _access_open():
            temporary, api_key = _temporary_ingest_key()
        client = BatchClient(url, api_key=api_key)
        started = time.monotonic()
        try:
            if self.verbose:
                self.stderr.write(f"The data directory is held by another process; sending the events to {url}.")
            with self._progress(events) as bar:
                accepted = client.send(batches, progress=bar.update)
        except ServerError as e:
            raise CommandError(
                f"{locked} Sending the events to a server instead failed: {e}. Start the server "
                "(`make run`) or pass its address with --url."
            ) from None
        finally:
            client.close()
            if temporary is not None:
                temporary.delete()
        seconds = time.monotonic() - started
        if self.verbose:
            self.stdout.write(
                f"generated {events} events, {accepted} accepted by {url} (ids already stored are "
                f"kept once) in {seconds:.1f} s ({events / seconds:,.0f} events/s)"
            )


def _access_open():
    from analytics_site.access.permissions import access_open

    return access_open()


def _temporary_ingest_key():
    """An ingest key for this run only (the open mode ends with the first key, so it is
    deleted, not revoked, afterwards)."""
    from analytics_site.access.models import ApiKey

    return ApiKey.objects.create_key(name="generate_events (temporary)", can_ingest=True)
