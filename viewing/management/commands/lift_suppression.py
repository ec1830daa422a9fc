"""lift_suppression: take a viewer off the suppression list (a suppression entry made by
mistake) and record it; their erased events stay erased, their events from now on are stored."""

import json

from django.core.management.base import BaseCommand, CommandError

from analytics_site.chdb_backend.engine import EngineLocked
from viewing.erasure import ErasureUnsupported, suppression_lift
from viewing.events import parse_uuid


class Command(BaseCommand):
    help = (
        "Take a viewer off the suppression list, so their events from now on are stored again (what was "
        "erased stays erased), and record it with the reason. Prints {\"user_id\": …, \"was_suppressed\": …}."
    )

    def add_arguments(self, parser):
        parser.add_argument("user_id", help="the viewer's UUID")
        parser.add_argument("--reason", required=True, help="why (kept in the record, shown in the admin)")
        parser.add_argument("--database", default="clickhouse", help="the ClickHouse database alias (clickhouse)")

    def handle(self, *args, user_id, reason, database, **options):
        try:
            user = parse_uuid(user_id)
        except ValueError:
            raise CommandError(f"Not a UUID: {user_id!r}.") from None
        if not reason.strip():
            raise CommandError("--reason must say why the suppression is lifted.")
        try:
            result = suppression_lift(user_id=user, requested_by="manage.py lift_suppression", reason=reason.strip(),
                                      using=database)
        except (EngineLocked, ErasureUnsupported) as e:
            raise CommandError(str(e)) from e
        self.stdout.write(json.dumps(result))
