"""The storage resource: the only thing in Dagster that knows the base path. It wraps the plain
lake and warehouse functions that `rul generate` uses too, so both write the same layout."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl

from core import lake, warehouse
from simulator.generate import SiteHistory


class LakeStorage(dg.ConfigurableResource):
    """Parquet lake at `<base_dir>/lake` and DuckDB views at `<base_dir>/warehouse.duckdb`."""

    base_dir: str

    @property
    def lake_dir(self) -> Path:
        return Path(self.base_dir) / "lake"

    @property
    def warehouse_path(self) -> Path:
        return Path(self.base_dir) / "warehouse.duckdb"

    def write_fleet(self, tables: dict[str, pl.DataFrame]) -> dict[str, lake.Written]:
        return lake.write_fleet(self.lake_dir, tables)

    def stage_site(self, history: SiteHistory) -> lake.StagedSite:
        return lake.stage_site(self.lake_dir, history)

    def publish(self, staged: lake.StagedSite) -> dict[str, lake.Written]:
        return lake.publish(staged)

    def quarantine(self, staged: lake.StagedSite) -> Path:
        return lake.quarantine(staged)

    def site_files(self, table: str) -> list[Path]:
        """The published per-site files of a site table, in site order."""
        return sorted(lake.table_glob(self.lake_dir, table).parent.glob("*.parquet"))

    def read(self, table: str) -> pl.DataFrame:
        """A whole lake table: every published site (or the fleet file)."""
        return pl.read_parquet(lake.table_glob(self.lake_dir, table))

    def derived_path(self, name: str) -> Path:
        """Where a table derived from the lake lives, e.g. `features/snapshots`."""
        return self.lake_dir / f"{name}.parquet"

    def write_derived(self, name: str, df: pl.DataFrame) -> lake.Written:
        return lake.write_frame(df, self.derived_path(name))

    def read_derived(self, name: str) -> pl.DataFrame:
        return pl.read_parquet(self.derived_path(name))

    def refresh_warehouse(self) -> dict[str, int]:
        return warehouse.refresh_views(self.lake_dir, self.warehouse_path)
