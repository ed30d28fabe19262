"""The DuckDB warehouse: SQL views over everything published to the lake."""

import dagster as dg

from assets.data.fleet import DESCRIPTIONS as FLEET_TABLES
from assets.data.site_history import DESCRIPTIONS as SITE_TABLES
from assets.resources.storage import LakeStorage
from core.warehouse import WRITER_POOL


@dg.asset(
    key="warehouse",
    group_name="data",
    kinds={"duckdb"},
    deps=[dg.AssetKey(["lake", table]) for table in (*FLEET_TABLES, *SITE_TABLES)],
    pool=WRITER_POOL,  # DuckDB allows one writer per file: pool limit 1 in dagster.yaml
)
def warehouse(storage: LakeStorage) -> dg.MaterializeResult:
    """Refresh the DuckDB views over the lake. The file holds views only, so the write lock is
    held for milliseconds and readers query the lake's Parquet files through it."""
    counts = storage.refresh_warehouse()
    rows = "\n".join(f"| {view} | {count:,} |" for view, count in counts.items())
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(storage.warehouse_path)),
            "views": dg.MetadataValue.md(f"| view | rows |\n|---|---|\n{rows}"),
            "view_count": len(counts),
        }
    )
