"""erase_user: erase every stored event of one viewer (viewing/erasure.py) and record it."""

import json

from django.core.management.base import BaseCommand, CommandError

from analytics_site.chdb_backend.engine import EngineLocked
from viewing.erasure import ErasureNotNow, ErasureUnsupported, user_erase
from viewing.events import parse_uuid


class Command(BaseCommand):
    help = (
        "Erase every stored event of a viewer, aggregates included, and keep their later events out "
        "(suppression list). Prints {\"user_id\": …, \"events_deleted\": n}; erasing again prints 0."
    )

    def add_arguments(self, parser):
        parser.add_argument("user_id", help="the viewer's UUID")
        parser.add_argument("--database", default="clickhouse", help="the ClickHouse database alias (clickhouse)")

    def handle(self, *args, user_id, database, **options):
        try:
            user = parse_uuid(user_id)
        except ValueError:
            raise CommandError(f"Not a UUID: {user_id!r}.") from None
        try:
            result = user_erase(user_id=user, requested_by="manage.py erase_user", using=database)
        except (EngineLocked, ErasureNotNow, ErasureUnsupported) as e:
            raise CommandError(str(e)) from e
        self.stdout.write(json.dumps(result))
