"""create_api_key: a new scoped API key, printed once."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from analytics_site.access.models import SCOPES, ApiKey


class Command(BaseCommand):
    help = "Create an API key with the given scopes and print it (it cannot be shown again)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Who uses the key (free text, 50 characters max).")
        parser.add_argument(
            "--scope", action="append", choices=SCOPES, required=True, dest="scopes",
            help="ingest (POST events), read (analytics, /metrics), erase (delete a viewer's events) "
            "or export (download raw events); repeat for several.",
        )
        parser.add_argument("--expires", help="ISO-8601 date-time after which the key stops working.")

    def handle(self, *args, name, scopes, expires=None, **options):
        if len(name) > 50:
            raise CommandError("--name is at most 50 characters.")
        expiry = None
        if expires:
            expiry = parse_datetime(expires)
            if expiry is None or expiry.tzinfo is None:
                raise CommandError("--expires must be an ISO-8601 date-time with Z or an offset.")
            # A key that never works would still end the open mode of `make run` (any key does).
            if expiry <= timezone.now():
                raise CommandError(f"--expires {expires} is in the past: the key would never work.")
        api_key, key = ApiKey.objects.create_key(
            name=name, expiry_date=expiry, **{f"can_{scope}": scope in scopes for scope in SCOPES}
        )
        if options["verbosity"] > 0:
            self.stderr.write(
                f"Created API key {api_key.prefix} ({name}; scopes: {', '.join(api_key.scopes)}). "
                "Store it now, it cannot be shown again; send it as 'Authorization: Api-Key <key>'."
            )
        self.stdout.write(key)
