"""The DuckDB warehouse: one VIEW per lake table, over the published Parquet files.

DuckDB lets one process write a database file and locks out every other process meanwhile
(PLATFORM_NOTES). The file therefore holds views only, no data: a refresh is a few DDL
statements in a short-lived read-write connection, data arrives by publishing Parquet files,
and the views see it without a refresh. Dagster runs refreshes in the `duckdb_writer` pool
(limit 1), so refreshes never race each other; the live ingest, which needs a refresh only
when a live table gets its first file, calls the same short-lock function.

Views (each only once a file exists for it):
    sites, systems, strings                  `<table>.parquet`
    telemetry, environment, ... (history)    `<table>/<site_id>.parquet`
    telemetry_live, environment_live,        `<table>_live/date=YYYY-MM-DD/<name>.parquet`,
    discharge_events_live                    with the partition as a DATE column `date`
    rul_predictions                          `rul_predictions/*/*.parquet`
    alerts, alert_events                     `alerts.parquet`, `alert_events.parquet`
    telemetry_all, environment_all,          history UNION ALL live, the contract's columns
    discharge_events_all
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from core.lake import FLEET_TABLES, SITE_TABLES, table_glob
from core.layout import LIVE_TABLES
from simulator.schema import TABLES

WRITER_POOL = "duckdb_writer"
LOCK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ViewSource:
    """Where a view reads from: a glob relative to the lake, Hive-partitioned or not."""

    pattern: str
    partitioned: bool = False  # `<key>=<value>` folders become a column (unless files have it)

    def files(self, lake: Path) -> list[Path]:
        return sorted(lake.glob(self.pattern))

    def sql(self, lake: Path, files: list[Path]) -> str:
        source = _sql_string(lake / self.pattern)
        if not self.partitioned:
            return f"read_parquet({source})"
        keys = _hive_keys(files[0])  # a column of the files themselves would be overridden
        flag = "true" if keys and not keys & set(pq.read_schema(files[0]).names) else "false"
        return f"read_parquet({source}, hive_partitioning = {flag}, union_by_name = true)"


def _hive_keys(path: Path) -> set[str]:
    folder = path.parent.name
    return {folder.split("=", 1)[0]} if "=" in folder else set()


def live_table(table: str) -> str:
    """The lake table (and view) of a landed table: `telemetry` -> `telemetry_live`."""
    return f"{table}_live"


def view_registry() -> dict[str, ViewSource]:
    """Every plain view and its source, in creation order."""
    views = {t: ViewSource(str(table_glob(Path(), t))) for t in (*FLEET_TABLES, *SITE_TABLES)}
    views |= {live_table(t): ViewSource(f"{live_table(t)}/*/*.parquet", partitioned=True)
              for t in LIVE_TABLES}
    views["rul_predictions"] = ViewSource("rul_predictions/*/*.parquet", partitioned=True)
    views["alerts"] = ViewSource("alerts.parquet")
    views["alert_events"] = ViewSource("alert_events.parquet")
    return views


def combined_views() -> dict[str, tuple[str, str]]:
    """`<table>_all`: the history and the live table of one landed table."""
    return {f"{t}_all": (t, live_table(t)) for t in LIVE_TABLES}


def _sql_string(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _connect_rw(path: Path, timeout_s: float) -> duckdb.DuckDBPyConnection:
    """Open for writing, waiting while a reader briefly holds the file."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def view_sources(lake: Path) -> dict[str, str]:
    """The SQL source of every plain view that has at least one published file."""
    out = {}
    for view, source in view_registry().items():
        files = source.files(lake)
        if files:
            out[view] = source.sql(lake, files)
    return out


def _combined_sql(parts: list[str], table: str) -> str:
    columns = ", ".join(f'"{c}"' for c in TABLES[table])
    return " UNION ALL ".join(f"SELECT {columns} FROM {part}" for part in parts)


def refresh_views(lake: Path, db: Path, *, timeout_s: float = LOCK_TIMEOUT_S) -> dict[str, int]:
    """(Re)create the views; a table with no published file yet has no view. Returns the row
    count behind each plain view, counted from Parquet metadata outside the write lock."""
    sources = view_sources(lake)
    combined = {
        view: [p for p in parts if p in sources] for view, parts in combined_views().items()
    }
    db.parent.mkdir(parents=True, exist_ok=True)
    con = _connect_rw(db, timeout_s)
    try:
        con.execute("BEGIN")
        for view in combined:
            con.execute(f"DROP VIEW IF EXISTS {view}")
        for view in view_registry():
            if view in sources:
                con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {sources[view]}")
            else:
                con.execute(f"DROP VIEW IF EXISTS {view}")
        for view, parts in combined.items():
            if parts:
                table = view.removesuffix("_all")
                con.execute(f"CREATE VIEW {view} AS {_combined_sql(parts, table)}")
        con.execute("COMMIT")
    finally:
        con.close()
    with duckdb.connect() as mem:
        return {
            view: mem.execute(f"SELECT count(*) FROM {src}").fetchone()[0]
            for view, src in sources.items()
        }


def existing_views(db: Path) -> set[str] | None:
    """The views the warehouse file holds now; None if it cannot be read at the moment (a
    writer holds it). A missing file holds no view."""
    if not db.exists():
        return set()
    try:
        with duckdb.connect(str(db), read_only=True) as con:
            return {row[0] for row in con.execute("SELECT view_name FROM duckdb_views() "
                                                  "WHERE NOT internal").fetchall()}
    except duckdb.IOException:
        return None


def missing_views(lake: Path, db: Path) -> list[str] | None:
    """Views that have published files but are not in the warehouse yet (None: unknown)."""
    present = existing_views(db)
    if present is None:
        return None
    return sorted(set(view_sources(lake)) - present)
