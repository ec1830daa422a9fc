"""What a ClickHouse table or materialized view is declared as (viewing/ddl.py declares them),
and the DDL each declaration renders to: on one node, or on a cluster.

Cluster DDL is made from the same declaration with other templates, never by rewriting
finished SQL: a `Table` becomes a Replicated* engine table `<name>_local` on every node and a
`Distributed` table `<name>` over them; a `MaterializedView` reads and writes the local tables
on each node. So a table declared with any engine of the MergeTree family is replicated in
cluster mode by construction, and an engine this module cannot replicate is refused when it
is declared, not discovered on a cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INTERVAL = re.compile(r"INTERVAL [1-9][0-9]* (SECOND|MINUTE|HOUR|DAY)")

# Where the replicas of a local table meet in Keeper: one path per shard and table.
ZK_PATH = "/clickhouse/tables/{{shard}}/{{database}}/{local}"


def identifier(name: str, what: str = "name") -> str:
    """`name` if it is a plain SQL identifier (what DDL may contain unquoted), else ValueError."""
    if not isinstance(name, str) or not _IDENT.fullmatch(name):
        raise ValueError(f"{what} must be a plain identifier, got {name!r}")
    return name


@dataclass(frozen=True)
class Engine:
    """A MergeTree-family engine: its family name and its parameters (none for most).

    The one spelling of each engine is rendered here (`MergeTree`, `ReplacingMergeTree(ver)`),
    and its replicated form (`ReplicatedMergeTree('<zk path>', '{replica}')`) from the same
    declaration.
    """

    family: str
    params: tuple[str, ...] = ()

    FAMILIES = frozenset({
        "MergeTree",
        "AggregatingMergeTree",
        "SummingMergeTree",
        "ReplacingMergeTree",
        "CollapsingMergeTree",
        "VersionedCollapsingMergeTree",
    })

    def __post_init__(self) -> None:
        if self.family not in self.FAMILIES:
            raise ValueError(
                f"engine {self.family!r}: declare one of {sorted(self.FAMILIES)} by name "
                "(parameters go in `params`); other engines need a cluster template in "
                "viewing/ddl_objects.py first"
            )

    def single(self) -> str:
        return f"{self.family}({', '.join(self.params)})" if self.params else self.family

    def replicated(self, local: str) -> str:
        args = [f"'{ZK_PATH.format(local=local)}'", "'{replica}'", *self.params]
        return f"Replicated{self.family}({', '.join(args)})"


MERGE_TREE = Engine("MergeTree")
AGGREGATING_MERGE_TREE = Engine("AggregatingMergeTree")

# The raw table and every table a view fills from it remember the block ids of their last 1,000
# inserts. Each insert of events carries its own insert_deduplication_token, so one sent
# again after it failed half-way (the raw table took the rows, a view failed) writes only the
# parts that are missing, in the raw table and in every view (viewing/services.py). Replicated
# tables (cluster mode) keep such a window anyway (replicated_deduplication_window).
INSERT_DEDUPLICATION = ("non_replicated_deduplication_window", 1000)

TableKind = Literal["raw", "aggregate", "lookup"]


@dataclass(frozen=True)
class Table:
    """A table that holds data.

    kind: "raw" (events as stored), "aggregate" (written by a materialized view), "lookup"
    (an index the service reads by key). `ttl_column` is what rows expire by: after
    RETENTION_DAYS, or after `ttl_interval` ("INTERVAL 2 HOUR") for a table that holds only
    recent rows whatever the retention. `shard_key` is the cluster's sharding expression (None:
    rows go where the view that writes them runs).
    """

    name: str
    kind: TableKind
    columns: tuple[tuple[str, str], ...]
    engine: Engine
    order_by: str
    partition_by: str | None = None
    ttl_column: str | None = None
    ttl_interval: str | None = None
    settings: tuple[tuple[str, int | str], ...] = ()
    indexes: tuple[str, ...] = ()
    shard_key: str | None = None

    def __post_init__(self) -> None:
        identifier(self.name, "table name")
        for column, _type in self.columns:
            identifier(column, f"column of {self.name}")
        if self.ttl_column is not None and self.ttl_column not in self.column_names:
            raise ValueError(f"{self.name}: TTL column {self.ttl_column!r} is not a column")
        if self.ttl_interval is not None and not (self.ttl_column and _INTERVAL.fullmatch(self.ttl_interval)):
            raise ValueError(f"{self.name}: ttl_interval is 'INTERVAL <n> <unit>' with a TTL column")
        if self.kind not in ("raw", "aggregate", "lookup"):
            raise ValueError(f"{self.name}: unknown kind {self.kind!r}")

    @property
    def column_names(self) -> list[str]:
        return [name for name, _type in self.columns]

    @property
    def local_name(self) -> str:
        return f"{self.name}_local"

    def _body(self, head: str, engine: str, days: int) -> str:
        lines = [f"    {name} {type_}" for name, type_ in self.columns]
        lines += [f"    INDEX {index}" for index in self.indexes]
        sql = f"{head}\n(\n" + ",\n".join(lines) + f"\n)\nENGINE = {engine}"
        if self.partition_by:
            sql += f"\nPARTITION BY {self.partition_by}"
        sql += f"\nORDER BY {self.order_by}"
        if self.ttl_column:
            sql += f"\nTTL {self.ttl_column} + {self.ttl_interval or f'INTERVAL {int(days)} DAY'}"
        if self.settings:
            sql += "\nSETTINGS " + ", ".join(f"{k} = {v}" for k, v in self.settings)
        return sql

    def create(self, days: int) -> list[tuple[str, str]]:
        """(CREATE, DROP) on one node."""
        return [(self._body(f"CREATE TABLE {self.name}", self.engine.single(), days), f"DROP TABLE {self.name}")]

    def create_on_cluster(self, days: int, cluster: str) -> list[tuple[str, str]]:
        """(CREATE, DROP) of the replicated local table, then of the Distributed table over it."""
        on = f"ON CLUSTER {identifier(cluster, 'CLICKHOUSE_CLUSTER')}"
        local = self.local_name
        key = f", {self.shard_key}" if self.shard_key else ""
        return [
            (
                self._body(f"CREATE TABLE {local} {on}", self.engine.replicated(local), days),
                f"DROP TABLE {local} {on} SYNC",
            ),
            (
                f"CREATE TABLE {self.name} {on} AS {local}\n"
                f"ENGINE = Distributed({cluster}, currentDatabase(), {local}{key})",
                f"DROP TABLE {self.name} {on} SYNC",
            ),
        ]

    def alter_ttl(self, days: int, cluster: str | None = None) -> str:
        """The ALTER that sets this table's retention (on every node's local table on a cluster)."""
        if self.ttl_column is None or self.ttl_interval is not None:
            raise ValueError(f"{self.name} does not expire by RETENTION_DAYS")
        if cluster:
            target = f"{self.local_name} ON CLUSTER {identifier(cluster, 'CLICKHOUSE_CLUSTER')}"
        else:
            target = self.name
        return f"ALTER TABLE {target} MODIFY TTL {self.ttl_column} + INTERVAL {int(days)} DAY"


@dataclass(frozen=True)
class MaterializedView:
    """A materialized view: on each insert into `source`, `select` (its `FROM {source}` a
    placeholder) runs over the inserted rows and writes the result into `target`."""

    name: str
    target: Table
    source: Table
    select: str
    kind: Literal["view"] = field(default="view", init=False)

    def __post_init__(self) -> None:
        identifier(self.name, "view name")
        if "{source}" not in self.select:
            raise ValueError(f"{self.name}: the SELECT reads FROM {{source}}, not a table name")

    def _select(self, source: str) -> str:
        return self.select.strip().replace("{source}", source)

    def create(self, days: int = 0) -> list[tuple[str, str]]:
        """(CREATE, DROP) on one node."""
        return [(
            f"CREATE MATERIALIZED VIEW {self.name} TO {self.target.name} AS\n{self._select(self.source.name)}",
            f"DROP VIEW {self.name}",
        )]

    def create_on_cluster(self, days: int, cluster: str) -> list[tuple[str, str]]:
        """(CREATE, DROP) on every node, from the node's local source into its local target."""
        on = f"ON CLUSTER {identifier(cluster, 'CLICKHOUSE_CLUSTER')}"
        return [(
            f"CREATE MATERIALIZED VIEW {self.name} {on} TO {self.target.local_name} AS\n"
            f"{self._select(self.source.local_name)}",
            f"DROP VIEW {self.name} {on} SYNC",
        )]

    def backfill(self, cluster: str | None = None) -> str:
        """The INSERT that fills the target from what the source already holds.

        On a cluster it runs on the node that migrates and reads every shard's local source:
        the rows land in that node's shard, which is correct because every read of an
        aggregate merges the rows of all shards (they are not placed by a sharding key).
        """
        if not cluster:
            return f"INSERT INTO {self.target.name}\n{self._select(self.source.name)}"
        source = f"cluster({identifier(cluster, 'CLICKHOUSE_CLUSTER')}, currentDatabase(), {self.source.local_name})"
        return f"INSERT INTO {self.target.local_name}\n{self._select(source)}"


SchemaObject = Table | MaterializedView


def render(objects: list[SchemaObject], days: int, cluster: str | None = None) -> list[tuple[str, str]]:
    """(statement, reverse) pairs creating `objects` in order, on one node or on `cluster`."""
    out: list[tuple[str, str]] = []
    for obj in objects:
        out += obj.create_on_cluster(days, cluster) if cluster else obj.create(days)
    return out
