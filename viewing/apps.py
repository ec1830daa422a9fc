"""Django app config for the viewing app."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _apply_retention(sender, using, **kwargs):
    if using == "clickhouse":
        from .durability import durability_apply
        from .part_storage import packed_apply
        from .retention import retention_apply

        retention_apply(using=using)
        durability_apply(using=using)
        packed_apply(using=using)


class ViewingConfig(AppConfig):
    name = "viewing"
    verbose_name = "Viewing analytics"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)

        post_migrate.connect(_apply_retention, sender=self)
