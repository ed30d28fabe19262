"""Great Expectations suites (simulator.validation) as blocking Dagster checks on each site's
sensor tables. They run on the staged files, before anything is published: a site whose
telemetry or environment fails never reaches the lake, so nothing downstream (battery truth,
maintenance, the warehouse views) can consume it."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import polars as pl
import pyarrow.parquet as pq

from core.lake import StagedSite

if TYPE_CHECKING:
    from simulator.validation import ValidationResult

TELEMETRY = dg.AssetKey(["lake", "telemetry"])
ENVIRONMENT = dg.AssetKey(["lake", "environment"])
CHECK_NAME = "expectations"
MAX_BATCH_ROWS = 4_000_000  # a 1-h site history fits one batch; 60-s histories are split


def check_specs(partitions: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    """One blocking check per sensor table, reported per site partition."""
    with warnings.catch_warnings():  # per-partition check results are a preview API in 1.13
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(
                CHECK_NAME,
                asset=key,
                blocking=True,
                partitions_def=partitions,
                description=f"Great Expectations suite for {key.path[-1]}: schema, ranges, "
                "time step and completeness. Failing sites are quarantined, not published.",
            )
            for key in (ENVIRONMENT, TELEMETRY)
        ]


def validate_site(staged: StagedSite, *, step_s: int) -> list[dg.AssetCheckResult]:
    """Validate the staged sensor tables. Every unit in the site's `batteries` table must
    report telemetry, and no other unit may."""
    from simulator.validation import validate_environment  # GX imports take seconds

    environment = pl.read_parquet(staged.files["environment"].path)
    telemetry = _validate_telemetry(
        staged.files["telemetry"].path, step_s, staged.files["batteries"].rows
    )
    return [
        to_check_result(ENVIRONMENT, validate_environment(environment, expected_step_s=step_s)),
        to_check_result(TELEMETRY, telemetry),
    ]


def _validate_telemetry(path: Path, step_s: int, batteries: int) -> ValidationResult:
    """Validate the whole file at once, or, past MAX_BATCH_ROWS (sub-hourly histories), in
    time-ordered batches of whole row groups so memory stays bounded. A batch covers only part
    of the window, so the unit count is then checked once over the whole file."""
    from simulator.validation import validate_telemetry

    parquet = pq.ParquetFile(path)
    batches = list(_row_group_batches(parquet.metadata))
    if len(batches) == 1:
        frame = pl.from_arrow(parquet.read_row_groups(batches[0]))
        return validate_telemetry(frame, expected_step_s=step_s, expected_batteries=batteries)
    results = [
        validate_telemetry(pl.from_arrow(parquet.read_row_groups(g)), expected_step_s=step_s)
        for g in batches
    ]
    failures = list(dict.fromkeys(f for r in results for f in r.failures))
    units = pl.scan_parquet(path).select(pl.col("battery_id").n_unique()).collect().item()
    if units != batteries:
        failures.append(f"battery_id: {units} distinct values, expected {batteries}")
    worst = next((r for r in results if not r.passed), results[-1])
    return dataclasses.replace(
        worst,
        passed=not failures,
        rows=sum(r.rows for r in results),
        failures=failures,
        metadata={**worst.metadata, "battery_id.count": units, "batches": len(results)},
    )


def _row_group_batches(metadata: pq.FileMetaData) -> Iterator[list[int]]:
    """Consecutive row-group indices, about MAX_BATCH_ROWS rows per batch."""
    groups, rows = [], 0
    for i in range(metadata.num_row_groups):
        groups.append(i)
        rows += metadata.row_group(i).num_rows
        if rows >= MAX_BATCH_ROWS:
            yield groups
            groups, rows = [], 0
    if groups or metadata.num_row_groups == 0:
        yield groups


def to_check_result(key: dg.AssetKey, result: ValidationResult) -> dg.AssetCheckResult:
    failures = "\n".join(f"- {failure}" for failure in result.failures) or "none"
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=CHECK_NAME,
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(result.failures)} failed expectation(s) on {result.rows} rows",
        metadata={
            **result.metadata,
            "rows": result.rows,
            "failures": dg.MetadataValue.md(failures),
        },
    )
