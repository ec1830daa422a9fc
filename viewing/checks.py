"""System checks (`manage.py check`, and every command that runs them: migrate, consume_stream)."""

from django.conf import settings
from django.core.checks import Warning, register

from analytics_site.chdb_backend.filesystem import describe, filesystem_of

NO_JOURNAL = "viewing.W001"


@register("database")
def data_dir_filesystem_check(app_configs, **kwargs) -> list[Warning]:
    """The embedded engine's data directory on ext4 without a journal: every insert then pays
    the kernel's scan of recently deleted inodes (analytics_site/chdb_backend/filesystem.py)."""
    if not settings.CLICKHOUSE_EMBEDDED:
        return []
    fs = filesystem_of(settings.CLICKHOUSE_DATA_DIR)
    if fs is None or fs.fstype != "ext4" or fs.journal is not False:
        return []
    return [Warning(
        f"The ClickHouse data directory {settings.CLICKHOUSE_DATA_DIR} is on {describe(fs)}: each new "
        "file makes the kernel scan recently deleted inodes, up to half of an insert's CPU (measured with perf).",
        hint="Put CLICKHOUSE_DATA_DIR on a journaled file system (ext4 with its journal, XFS); see "
             "docs/operations.md. To accept it: SILENCED_SYSTEM_CHECKS=viewing.W001.",
        id=NO_JOURNAL,
    )]
