"""Ingest of the live simulator's landing files: one multi-asset for the three live lake
tables, run by the `ingest_landing` job that `landing_sensor` launches. The work is
`core.ingest`; this wraps it with config, metadata and a per-table quality check."""


from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from assets.metadata import markdown_table
from assets.resources.storage import LakeStorage
from core.layout import LIVE_TABLES, Layout
from core.warehouse import live_table

LIVE_KEYS = {table: dg.AssetKey(["lake", live_table(table)]) for table in LIVE_TABLES}
CHECK_NAME = "batch_expectations"
OP_NAME = "live_ingest"
DESCRIPTIONS = {
    "telemetry": "Live block readings (simulator.schema.TELEMETRY), one file per landing "
                 "batch and simulated UTC day: lake/telemetry_live/date=YYYY-MM-DD/<name>.parquet",
    "environment": "Live site climate and HVAC/grid state (simulator.schema.ENVIRONMENT), "
                   "lake/environment_live/date=YYYY-MM-DD/<name>.parquet",
    "discharge_events": "Live discharges, landed when they end (simulator.schema."
                        "DISCHARGE_EVENTS), by start day: lake/discharge_events_live/date=...",
}


class IngestConfig(dg.Config):
    """Which landing files this run ingests."""

    files: list[str] = Field(
        default_factory=list,
        description="Landing files as '<table>/<name>.parquet' relative to the landing area "
        "(what landing_sensor requests); empty: every pending file (manual catch-up).")
    keep_ingested: bool = Field(
        default=True,
        description="Move ingested landing files to landing/_ingested/<table>/ (else delete "
        "them; the manifest in lake/_ingest/ records them either way).")


@dg.multi_asset(
    name=OP_NAME,
    specs=[dg.AssetSpec(key, group_name="live", kinds={"parquet", "polars"}, skippable=True,
                        description=DESCRIPTIONS[table]) for table, key in LIVE_KEYS.items()],
    check_specs=[dg.AssetCheckSpec(
        CHECK_NAME, asset=key, description="Great Expectations suite of each landed batch "
        "(schema, non-null keys, ranges, categories, duplicate keys, time window); failing "
        "batches are quarantined with a reason file, never published.")
        for key in LIVE_KEYS.values()],
    can_subset=True,  # also makes the checks optional: only touched tables report
    # ingest is idempotent by file name, so a run that failed on a busy disk or lock can
    # simply run again
    retry_policy=dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL),
)
def live_ingest(context: dg.AssetExecutionContext, config: IngestConfig, storage: LakeStorage):
    """Validate and publish landed live batches into the lake, split by simulated day;
    ingesting a file again adds nothing. Creates the warehouse views of a live table once it
    has its first file."""
    from core.ingest import LandingFile, ingest_files

    data_dir = Path(storage.base_dir)
    landing = Layout(data_dir).landing_dir
    files = [LandingFile.of(landing, key) for key in config.files] or None
    tables = [t for t, key in LIVE_KEYS.items() if key in context.selected_asset_keys]
    outcomes = ingest_files(data_dir, files, tables=tables, keep_ingested=config.keep_ingested)
    for o in outcomes:
        if o.status == "quarantined":
            context.log.warning(f"quarantined {o.file.key}: " + "; ".join(
                f"{p['column']}: {p['problem']} ({p['count']})" for p in o.reason["problems"]))
    views = _ensure_views(context, storage)
    for table, key in LIVE_KEYS.items():
        mine = [o for o in outcomes if o.file.table == table and o.status != "missing"]
        if not mine:
            continue  # skippable: no materialization for a table this run did not touch
        yield dg.MaterializeResult(asset_key=key, metadata=_metadata(storage, table, mine, views))
        bad = [o for o in mine if o.status == "quarantined"]
        yield dg.AssetCheckResult(
            asset_key=key, check_name=CHECK_NAME, passed=not bad,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"{len(bad)} of {len(mine)} batch(es) quarantined",
            metadata={"quarantined": dg.MetadataValue.md(_reasons(bad) or "none")})


def _ensure_views(context: dg.AssetExecutionContext, storage: LakeStorage) -> str:
    """Refresh the warehouse (the short write lock of core.warehouse) only if a table has
    files but no view yet; the views' globs see every later file without a refresh."""
    from core.warehouse import missing_views, refresh_views

    missing = missing_views(storage.lake_dir, storage.warehouse_path)
    if missing == []:
        return "up to date"
    try:
        refresh_views(storage.lake_dir, storage.warehouse_path)
    except Exception as exc:  # noqa: BLE001 - the data is published; the next run retries
        context.log.warning(f"warehouse views not refreshed ({exc}); the next ingest retries")
        return f"refresh failed: {exc}"
    return "refreshed" + (f": created {', '.join(missing)}" if missing else "")


def _metadata(storage: LakeStorage, table: str, outcomes: list, views: str) -> dict:
    published = [o for o in outcomes if o.status == "published"]
    newest = max((o.newest_ts for o in published if o.newest_ts is not None), default=None)
    heads = [o.head for o in published if o.head is not None and o.head.height]
    days = sorted({p.parent.name.removeprefix("date=") for o in published for p in o.published})
    files = "\n".join(f"- {o.file.key}: {o.status}, {o.rows:,} rows" for o in outcomes)
    gx = [o.validation.seconds for o in outcomes if o.validation is not None]
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(sum(o.rows for o in outcomes)),
        "files": len(outcomes),
        "files_published": len(published),
        "files_duplicate": sum(o.status == "duplicate" for o in outcomes),
        "files_quarantined": sum(o.status == "quarantined" for o in outcomes),
        "rows_dropped_as_repeats": sum(o.dropped for o in outcomes),
        "file_list": dg.MetadataValue.md(files),
        "quarantined": dg.MetadataValue.md(_reasons(
            [o for o in outcomes if o.status == "quarantined"]) or "none"),
        "days": ", ".join(days) or "none",
        "path": dg.MetadataValue.path(str(storage.lake_dir / live_table(table))),
        "warehouse_views": views,
        "gx_seconds_per_batch": round(sum(gx) / len(gx), 3) if gx else 0.0,
    }
    if newest is not None:
        metadata["newest_simulated_ts"] = dg.MetadataValue.timestamp(newest)
    if heads:
        metadata["preview"] = dg.MetadataValue.md(markdown_table(pl.concat(heads).head(5)))
    return metadata


def _reasons(quarantined: list) -> str:
    lines = [f"| {o.file.key} | {p['column']} | {p['problem']} | {p['count']:,} |"
             for o in quarantined for p in o.reason["problems"]]
    return "| file | column | problem | rows |\n|---|---|---|---|\n" + "\n".join(lines) \
        if lines else ""


ingest_landing = dg.define_asset_job(
    "ingest_landing",
    selection=dg.AssetSelection.assets(*LIVE_KEYS.values(), dg.AssetKey(["lake", "alerts"])),
    description="Ingest landed live files (run config: ops.live_ingest.config.files), then "
    "evaluate the alert rules on them; "
    "launched by landing_sensor, or by hand with no files to catch up on every pending one.",
)
