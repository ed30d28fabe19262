"""The Parquet lake: plain functions shared by the Dagster storage resource and `rul generate`.

Layout under the lake root: `<table>.parquet` for the fleet tables and
`<table>/<site_id>.parquet` for site tables. A site is first written to `_staging/`, then
published by renaming its files into place, so readers never see a half-written file and a
failed site never mixes with the last good one. Sites that fail validation are moved to
`_quarantine/` for inspection. Underscore folders are outside every reader's glob.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from simulator.atomic import atomic_path
from simulator.generate import SiteHistory
from simulator.schema import conform, empty

FLEET_TABLES = ("sites", "systems", "strings")
SITE_TABLES = (
    "environment",
    "telemetry",
    "batteries",
    "discharge_events",
    "discharge_curves",
    "maintenance_events",
    "battery_truth",
)
COMPRESSION = "zstd"
MIN_ROW_GROUP = 250_000  # coalesce small telemetry chunks: tiny row groups make scans slow
PREVIEW_ROWS = 5


def table_path(lake: Path, table: str, site_id: str | None = None) -> Path:
    """Where a table (or one site's part of it) lives in the lake."""
    return lake / f"{table}.parquet" if site_id is None else lake / table / f"{site_id}.parquet"


def table_glob(lake: Path, table: str) -> Path:
    """The path pattern that matches every published file of a table."""
    return table_path(lake, table) if table in FLEET_TABLES else lake / table / "*.parquet"


@dataclass
class Written:
    """One written file: its path, row count and first rows (for previews)."""

    path: Path
    rows: int
    head: pl.DataFrame


@dataclass
class StagedSite:
    """A site's tables written to a private staging folder, not yet visible to readers."""

    lake: Path
    site_id: str
    folder: Path
    files: dict[str, Written] = field(default_factory=dict)


def write_frame(df: pl.DataFrame, path: Path) -> Written:
    """Write one DataFrame atomically."""
    with atomic_path(path) as tmp:
        df.write_parquet(tmp, compression=COMPRESSION)
    return Written(path, df.height, df.head(PREVIEW_ROWS))


def write_chunks(chunks: Iterable[pl.DataFrame], path: Path, table: str) -> Written:
    """Stream time-ordered chunks into one Parquet file, one row group per (coalesced) chunk,
    so a history far larger than memory can be written."""
    schema = empty(table).to_arrow().schema
    rows, head, pending = 0, empty(table), []
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, compression=COMPRESSION) as writer:
        for chunk in chunks:
            if rows == 0:
                head = chunk.head(PREVIEW_ROWS)
            pending.append(conform(chunk, table).to_arrow().cast(schema))
            rows += chunk.height
            if sum(t.num_rows for t in pending) >= MIN_ROW_GROUP:
                _flush(writer, pending)
        _flush(writer, pending)
    return Written(path, rows, head)


def _flush(writer: pq.ParquetWriter, pending: list[pa.Table]) -> None:
    if pending:
        table = pa.concat_tables(pending)
        writer.write_table(table, row_group_size=max(table.num_rows, 1))
        pending.clear()


def write_fleet(lake: Path, tables: dict[str, pl.DataFrame]) -> dict[str, Written]:
    return {name: write_frame(tables[name], table_path(lake, name)) for name in FLEET_TABLES}


def stage_site(lake: Path, history: SiteHistory) -> StagedSite:
    """Write every table of a simulated site into a fresh staging folder."""
    folder = lake / "_staging" / f"{history.site_id}-{uuid.uuid4().hex[:8]}"
    staged = StagedSite(lake, history.site_id, folder)
    try:
        for table in SITE_TABLES:
            path = folder / f"{table}.parquet"
            if table == "telemetry":
                staged.files[table] = write_chunks(history.telemetry_chunks(), path, table)
            else:
                staged.files[table] = write_frame(conform(getattr(history, table), table), path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return staged


def publish(staged: StagedSite) -> dict[str, Written]:
    """Rename the staged files over the site's lake files (same filesystem: atomic per file)."""
    published = {}
    for table, written in staged.files.items():
        target = table_path(staged.lake, table, staged.site_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(written.path, target)
        published[table] = Written(target, written.rows, written.head)
    shutil.rmtree(staged.folder, ignore_errors=True)
    return published


def quarantine(staged: StagedSite) -> Path:
    """Keep a rejected site out of the lake but on disk, replacing any earlier rejected copy."""
    target = staged.lake / "_quarantine" / staged.site_id
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged.folder, target)
    return target
