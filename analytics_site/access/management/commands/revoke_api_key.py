"""revoke_api_key: stop one API key from working, for good."""

from django.core.management.base import BaseCommand, CommandError

from analytics_site.access.models import ApiKey


class Command(BaseCommand):
    help = "Revoke an API key by its prefix (the 8 characters before the dot). Cannot be undone."

    def add_arguments(self, parser):
        parser.add_argument("prefix", help="The key's prefix, as the admin lists it.")

    def handle(self, *args, prefix, **options):
        try:
            api_key = ApiKey.objects.get(prefix=prefix)
        except ApiKey.DoesNotExist:
            raise CommandError(f"No API key with prefix {prefix!r}.") from None
        if not api_key.revoked:
            api_key.revoked = True
            api_key.save(update_fields=["revoked"])
        self.stdout.write(f"Revoked API key {prefix} ({api_key.name}).")
