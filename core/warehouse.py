"""The DuckDB warehouse: one VIEW per lake table, over the published Parquet files.

DuckDB lets one process write a database file and locks out every other process meanwhile
(PLATFORM_NOTES). The file therefore holds views only, no data: a refresh is a few DDL
statements in a short-lived read-write connection, data arrives by publishing Parquet files,
and the views see it without a refresh. Dagster runs refreshes in the `duckdb_writer` pool
(limit 1), so refreshes never race each other.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from core.lake import FLEET_TABLES, SITE_TABLES, table_glob

WRITER_POOL = "duckdb_writer"
LOCK_TIMEOUT_S = 30.0


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


def refresh_views(lake: Path, db: Path, *, timeout_s: float = LOCK_TIMEOUT_S) -> dict[str, int]:
    """(Re)create the views; a table with no published file yet has no view. Returns the row
    count behind each view, counted from Parquet metadata outside the write lock."""
    sources = {
        table: table_glob(lake, table)
        for table in (*FLEET_TABLES, *SITE_TABLES)
        if any(lake.glob(str(table_glob(lake, table).relative_to(lake))))
    }
    db.parent.mkdir(parents=True, exist_ok=True)
    con = _connect_rw(db, timeout_s)
    try:
        con.execute("BEGIN")
        for table in (*FLEET_TABLES, *SITE_TABLES):
            if table in sources:
                source = _sql_string(sources[table])
                con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet({source})")
            else:
                con.execute(f"DROP VIEW IF EXISTS {table}")
        con.execute("COMMIT")
    finally:
        con.close()
    with duckdb.connect() as mem:
        return {
            table: mem.execute(f"SELECT count(*) FROM read_parquet({_sql_string(src)})").fetchone()[0]
            for table, src in sources.items()
        }
