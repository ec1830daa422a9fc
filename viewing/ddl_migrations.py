"""Migrations from the schema registry (viewing/ddl.py): the SQL of new objects frozen into a
migration file, the operations such a file runs, and the `python -m viewing.ddl` command.

A migration holds its SQL as text, not a call into the registry: a database migrated once
must be re-creatable by the same migration after the registry has moved on. `{days}`
(RETENTION_DAYS) and `{cluster}` (CLICKHOUSE_CLUSTER) are the only placeholders, filled in
when the migration runs.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from viewing import ddl
from viewing.ddl_objects import MaterializedView, identifier

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Values that cannot occur in declared DDL, rendered and then replaced by the placeholders.
_DAYS, _CLUSTER = 987654321, "zz_cluster_placeholder_zz"

Statements = list[tuple[str | None, str | None]]


def fill(statements: Statements, retention_days: int, cluster: str | None) -> Statements:
    """Frozen statements with the placeholders filled in."""
    days = str(int(retention_days))
    if cluster:
        identifier(cluster, "CLICKHOUSE_CLUSTER")

    def one(text: str | None) -> str | None:
        if text is None:
            return None
        return text.replace("{days}", days).replace("{cluster}", cluster or "")

    return [(one(sql), one(reverse)) for sql, reverse in statements]


def operations(single_node: Statements, cluster: Statements) -> list:
    """RunSQL operations for this deployment (settings read when the migration loads).
    A reverse of None is a no-op (a backfill is undone by dropping its table); so is a
    statement of None (a migration dropping a view backfills its table only backwards)."""
    from django.conf import settings
    from django.db import migrations

    chosen = cluster if settings.CLICKHOUSE_CLUSTER else single_node
    noop = migrations.RunSQL.noop
    return [
        migrations.RunSQL(sql if sql is not None else noop, reverse if reverse is not None else noop)
        for sql, reverse in fill(chosen, settings.RETENTION_DAYS, settings.CLICKHOUSE_CLUSTER)
    ]


def frozen(names: list[str], cluster: bool) -> Statements:
    """CREATE (and, for each view, backfill) statements of the named objects, placeholders in."""
    out: Statements = []
    for obj in ddl.objects(names):
        pairs = obj.create_on_cluster(_DAYS, _CLUSTER) if cluster else obj.create(_DAYS)
        out += pairs
        if isinstance(obj, MaterializedView):
            out.append((obj.backfill(_CLUSTER if cluster else None), None))

    def placeholders(text: str | None) -> str | None:
        if text is None:
            return None
        if "{days}" in text or "{cluster}" in text:
            raise ValueError("declared DDL must not contain {days} or {cluster}")
        return text.replace(f"INTERVAL {_DAYS} DAY", "INTERVAL {days} DAY").replace(_CLUSTER, "{cluster}")

    return [(placeholders(sql), placeholders(reverse)) for sql, reverse in out]


def _literal(statements: Statements) -> str:
    lines = ["["]
    for sql, reverse in statements:
        lines += ["    (", f'        """\\\n{sql}""",', f"        {reverse!r},", "    ),"]
    return "\n".join(lines + ["]"])


def migration_source(names: list[str], *, dependency: str) -> str:
    """The text of a migration creating the named objects (and backfilling their views)."""
    listed = ", ".join(names)
    views = any(isinstance(o, MaterializedView) for o in ddl.objects(names))
    backfill = ", backfilling each view's table from the events already stored" if views else ""
    return f'''"""Creates {listed} (viewing/ddl.py){backfill}.

Written by `python -m viewing.ddl migration`; the SQL is frozen here on purpose.
"""

from django.db import migrations

from viewing.ddl_migrations import operations

SINGLE_NODE = {_literal(frozen(names, cluster=False))}

CLUSTER = {_literal(frozen(names, cluster=True))}


class Migration(migrations.Migration):

    dependencies = [("viewing", "{dependency}")]

    operations = operations(SINGLE_NODE, CLUSTER)
'''


def latest_migration(directory: Path = MIGRATIONS) -> str:
    names = sorted(p.stem for p in directory.glob("[0-9][0-9][0-9][0-9]_*.py"))
    return names[-1]


def write_migration(names: list[str], name: str, directory: Path = MIGRATIONS) -> Path:
    """Writes viewing/migrations/<next number>_<name>.py; returns its path."""
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ValueError(f"--name must be lowercase letters, digits and _, got {name!r}")
    latest = latest_migration(directory)
    path = directory / f"{int(latest[:4]) + 1:04d}_{name}.py"
    path.write_text(migration_source(names, dependency=latest))
    return path


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["migration"]:
        parser = argparse.ArgumentParser(
            prog="python -m viewing.ddl migration",
            description="Write a migration creating declared objects (and backfilling views).",
        )
        parser.add_argument("objects", nargs="+", help="names declared in viewing/ddl.py")
        parser.add_argument("--name", required=True, help="the migration's name, e.g. views_daily")
        args = parser.parse_args(argv[1:])
        print(write_migration(args.objects, args.name))
        return
    parser = argparse.ArgumentParser(
        prog="python -m viewing.ddl",
        description="Print the ClickHouse schema as SQL (or: migration OBJECT... --name NAME).",
    )
    parser.add_argument("--cluster", help="the DDL of cluster mode for this cluster name")
    print(ddl.schema_sql(cluster=parser.parse_args(argv).cluster), end="")
