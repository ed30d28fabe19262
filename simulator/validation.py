"""Data-quality validation of one site-partition of `telemetry` and `environment`.

Great Expectations decides every data check, but never sees the raw rows: its pandas engine
needs ~6 s per dozen expectations on a 3.8 M-row partition, too slow for nine partitions.
Polars instead reduces the partition, exactly and over all rows, to one summary row per battery
(site for `environment`): null/NaN counts, per-column min and max, duplicate and out-of-order
timestamps, rows present vs. expected; plus one row per distinct value of each categorical
column. GX validates those small frames. Nothing is sampled: a range holds on every row iff it
holds on every group's min and max. Only the schema (a property of Polars dtypes, which GX
cannot see) is checked without GX.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from simulator import schema

if TYPE_CHECKING:
    import pandas as pd

MAX_GAP_SHARE = 0.10

# Physical limits of a 12 V monobloc and its monitor: wide enough for a shorted block under
# load (~2 V lower), narrow enough to catch unit mistakes (millivolts, volts per cell, kelvin).
TELEMETRY_RANGES: dict[str, tuple[float, float, str]] = {
    "voltage_v": (6.0, 16.0, "V"),
    "current_a": (-400.0, 400.0, "A"),
    "temperature_c": (0.0, 80.0, "°C"),
    "resistance_mohm": (0.5, 50.0, "mΩ"),
    "conductance_s": (20.0, 2000.0, "S"),
    "soc_pct": (0.0, 100.0, "%"),
}
ENVIRONMENT_RANGES: dict[str, tuple[float, float, str]] = {
    "outdoor_temp_c": (-5.0, 50.0, "°C"),
    "room_temp_c": (5.0, 60.0, "°C"),
    "humidity_pct": (0.0, 100.0, "%"),
}

Metadata = dict[str, float | int | str]


@dataclass(frozen=True)
class ValidationResult:
    table: str
    passed: bool
    rows: int
    failures: list[str]  # one line per failed check, starting with the column it concerns
    metadata: Metadata  # flat, JSON-able: usable as Dagster asset-check metadata


@dataclass(frozen=True)
class _Check:
    """One GX expectation on a summary frame, with the all-row figure it stands for."""

    key: str  # metadata key, also used to find the expectation's result
    expectation: str  # class name in great_expectations.expectations
    kwargs: dict[str, Any]
    observed: float | int
    failure: str  # reported if GX fails the expectation


def validate_telemetry(
    df: pl.DataFrame,
    *,
    expected_step_s: int,
    expected_batteries: int | None = None,
    max_gap_share: float = MAX_GAP_SHARE,
) -> ValidationResult:
    """Validate one site's telemetry against the contract and the physics of a VRLA block."""
    return _validate(
        df, "telemetry", "battery_id", TELEMETRY_RANGES, {"mode": schema.MODES},
        expected_step_s=expected_step_s, max_gap_share=max_gap_share,
        expected_groups=expected_batteries,
    )


def validate_environment(
    df: pl.DataFrame, *, expected_step_s: int, max_gap_share: float = MAX_GAP_SHARE
) -> ValidationResult:
    """Validate one site's environment series (one row per site and timestamp)."""
    return _validate(
        df, "environment", "site_id", ENVIRONMENT_RANGES, {"hvac_state": schema.HVAC_STATES},
        expected_step_s=expected_step_s, max_gap_share=max_gap_share, expected_groups=None,
    )


def _validate(
    df: pl.DataFrame,
    table: str,
    key: str,
    ranges: dict[str, tuple[float, float, str]],
    categories: dict[str, tuple[str, ...]],
    *,
    expected_step_s: int,
    max_gap_share: float,
    expected_groups: int | None,
) -> ValidationResult:
    if expected_step_s <= 0:
        raise ValueError(f"expected_step_s must be positive, got {expected_step_s}")
    n = df.height
    usable, failures = _check_schema(df, schema.TABLES[table])
    metadata: Metadata = {"rows": n, "schema.problems": len(failures)}
    timed = key in usable and "ts" in usable
    summary = _summarise(df, usable, ranges, key if timed else None, expected_step_s)
    checks = [_Check("rows", "ExpectColumnSumToBeBetween", {"column": "rows", "min_value": 1},
                     n, f"{table}: partition has no rows")]
    for col in sorted(usable):
        missing = _total(summary, f"{col}__missing")
        checks.append(_Check(f"{col}.missing", "ExpectColumnValuesToBeBetween",
                             {"column": f"{col}__missing", "max_value": 0}, missing,
                             f"{col}: {missing:,} of {n:,} values are null or NaN"))
    for col, (lo, hi, unit) in ranges.items():
        if col in usable:
            checks += _range_checks(summary, col, lo, hi, unit, n)
            lowest, highest = summary[f"{col}__min"].min(), summary[f"{col}__max"].max()
            if lowest is not None and highest is not None:
                metadata |= {f"{col}.min": float(lowest), f"{col}.max": float(highest)}
    if timed:
        checks += _time_checks(summary, key, expected_step_s, max_gap_share)
        groups = summary.height
        metadata[f"{key}.count"] = groups
        if expected_groups is not None:
            checks.append(_Check(f"{key}.count", "ExpectTableRowCountToEqual",
                                 {"value": expected_groups}, groups,
                                 f"{key}: {groups} distinct values, expected {expected_groups}"))
    batches = [(_to_pandas(summary, checks), checks)]
    batches += [_category_batch(df, col, allowed)
                for col, allowed in categories.items() if col in usable]
    failed = _run_gx(batches)
    for check in (c for _, batch_checks in batches for c in batch_checks):
        metadata[check.key] = check.observed
        if check.key in failed:
            failures.append(check.failure)
    metadata["gx.expectations"] = sum(len(c) for _, c in batches)
    metadata["gx.failed"] = len(failed)
    return ValidationResult(table, not failures, n, failures, metadata)


def _check_schema(df: pl.DataFrame, contract: dict[str, pl.DataType]) -> tuple[set[str], list[str]]:
    """Report missing or incompatible columns; return the ones safe to check further."""
    usable, failures = set(), []
    for col, expected in contract.items():
        if col not in df.columns:
            failures.append(f"{col}: column missing (expected {expected})")
        elif not _compatible(df.schema[col], expected):
            failures.append(f"{col}: type {df.schema[col]} is not compatible with {expected}")
        else:
            usable.add(col)
    return usable, failures


def _compatible(actual: pl.DataType, expected: pl.DataType) -> bool:
    """Whether `schema.conform` can cast without changing meaning (e.g. no naive timestamps)."""
    if expected.is_float():
        return actual.is_numeric()
    if expected.is_integer():
        return actual.is_integer()
    if isinstance(expected, pl.Datetime):
        return isinstance(actual, pl.Datetime) and actual.time_zone == "UTC"
    if expected == pl.String:
        return actual == pl.String or actual == pl.Categorical or isinstance(actual, pl.Enum)
    return actual == expected


def _summarise(
    df: pl.DataFrame,
    usable: set[str],
    ranges: dict[str, tuple[float, float, str]],
    key: str | None,
    step_s: int,
) -> pl.DataFrame:
    """One row per group (or one row overall without a usable key) of exact all-row figures."""
    aggs = [pl.len().alias("rows")]
    for col in usable:
        missing = pl.col(col).null_count()
        if df.schema[col].is_float():
            missing = missing + pl.col(col).is_nan().sum()
        aggs.append(missing.alias(f"{col}__missing"))
    for col, (lo, hi, _) in ranges.items():
        if col in usable:
            aggs += [pl.col(col).min().alias(f"{col}__min"), pl.col(col).max().alias(f"{col}__max"),
                     (pl.col(col) < lo).sum().alias(f"{col}__below"),
                     (pl.col(col) > hi).sum().alias(f"{col}__above")]
    if key is None:
        return df.select(aggs)
    ts = pl.col("ts")
    span_s = (ts.max() - ts.min()).dt.total_seconds()
    expected = (span_s // step_s + 1).fill_null(0)
    present = ts.drop_nulls().n_unique()
    aggs += [
        (pl.len() - ts.n_unique()).alias("ts__duplicates"),
        (~pl.col("_ts_increasing")).sum().alias("ts__not_increasing"),
        expected.alias("ts__expected"),
        (expected - present).clip(lower_bound=0).alias("ts__gaps"),
    ]
    increasing = (ts > ts.shift(1).over(key)).fill_null(True)  # first row of a group: null
    return df.with_columns(_ts_increasing=increasing).group_by(key).agg(aggs).sort(key)


def _total(summary: pl.DataFrame, col: str) -> int:
    return int(summary[col].sum())


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.6g}"


def _range_checks(
    summary: pl.DataFrame, col: str, lo: float, hi: float, unit: str, n: int
) -> list[_Check]:
    """GX bounds every group's min and max; Polars counts the offending values for the report."""
    below, above = _total(summary, f"{col}__below"), _total(summary, f"{col}__above")
    lowest, highest = summary[f"{col}__min"].min(), summary[f"{col}__max"].max()
    where = f"of {n:,} values"
    return [
        _Check(f"{col}.below_min", "ExpectColumnValuesToBeBetween",
               {"column": f"{col}__min", "min_value": lo}, below,
               f"{col}: {below:,} {where} below {lo} {unit} (min {_fmt(lowest)})"),
        _Check(f"{col}.above_max", "ExpectColumnValuesToBeBetween",
               {"column": f"{col}__max", "max_value": hi}, above,
               f"{col}: {above:,} {where} above {hi} {unit} (max {_fmt(highest)})"),
    ]


def _time_checks(
    summary: pl.DataFrame, key: str, step_s: int, max_gap_share: float
) -> list[_Check]:
    dup, disorder = _total(summary, "ts__duplicates"), _total(summary, "ts__not_increasing")
    expected, gaps = _total(summary, "ts__expected"), _total(summary, "ts__gaps")
    share = gaps / expected if expected else 0.0
    first_disordered = summary.filter(pl.col("ts__not_increasing") > 0)[key].head(1).to_list()
    return [
        _Check("ts.duplicates", "ExpectColumnValuesToBeBetween",
               {"column": "ts__duplicates", "max_value": 0}, dup,
               f"ts: {dup:,} duplicate ({key}, ts) rows"),
        _Check("ts.not_increasing", "ExpectColumnValuesToBeBetween",
               {"column": "ts__not_increasing", "max_value": 0}, disorder,
               f"ts: {disorder:,} rows not later than the previous row of their {key} "
               f"(e.g. {first_disordered[0] if first_disordered else '?'})"),
        _Check("ts.missing_share", "ExpectColumnSumToBeBetween",
               {"column": "ts__gaps", "max_value": max_gap_share * expected}, round(share, 6),
               f"ts: {share:.1%} of {expected:,} expected {step_s} s steps missing "
               f"(limit {max_gap_share:.0%})"),
    ]


def _category_batch(
    df: pl.DataFrame, col: str, allowed: tuple[str, ...]
) -> tuple[pd.DataFrame, list[_Check]]:
    """GX checks the distinct values (with their counts) instead of every row."""
    counts = df.group_by(col).len().with_columns(pl.col(col).cast(pl.String))
    bad = counts.filter(pl.col(col).is_not_null() & ~pl.col(col).is_in(allowed))
    n_bad = int(bad["len"].sum())
    check = _Check(f"{col}.unexpected", "ExpectColumnValuesToBeInSet",
                   {"column": col, "value_set": list(allowed)}, n_bad,
                   f"{col}: {n_bad:,} of {df.height:,} values not in {{{', '.join(allowed)}}} "
                   f"(e.g. {bad[col].head(3).to_list()})")
    return counts.select(col).to_pandas(), [check]


def _to_pandas(summary: pl.DataFrame, checks: list[_Check]) -> pd.DataFrame:
    """Hand GX only the summary columns its expectations read."""
    cols = sorted({c.kwargs["column"] for c in checks if "column" in c.kwargs})
    return summary.select(cols).to_pandas()


def _run_gx(batches: list[tuple[pd.DataFrame, list[_Check]]]) -> set[str]:
    """Validate each frame with its suite in an ephemeral GX context; return failed check keys.
    An expectation that raises counts as failed."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    whole = (
        context.data_sources.add_pandas("partition")
        .add_dataframe_asset("summary")
        .add_batch_definition_whole_dataframe("whole")
    )
    failed: set[str] = set()
    for i, (frame, checks) in enumerate(batches):
        suite = gx.ExpectationSuite(
            name=f"suite-{i}",
            expectations=[
                getattr(gxe, c.expectation)(**c.kwargs, meta={"check": c.key}) for c in checks
            ],
        )
        result = whole.get_batch(batch_parameters={"dataframe": frame}).validate(
            suite, result_format="BASIC"
        )
        failed |= {r.expectation_config.meta["check"] for r in result.results if not r.success}
    return failed
