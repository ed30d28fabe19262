"""Great Expectations checks on one landed batch of live telemetry, environment or discharge
events, before it is published (core.ingest).

As in `simulator.validation`, Polars reduces the batch, exactly and over all rows, to one
summary row (per-column missing counts, minima and maxima, out-of-range counts, duplicate
keys, rows outside the batch's time window) plus one row per distinct value of each
categorical column, and GX validates those small frames; the schema is checked on the Polars
dtypes. The GX context and batch definition are built once per process, so a batch costs a
few milliseconds of Polars and one GX validation of a one-row frame.

Each failure is a `Problem` naming the column, what is wrong and how many rows: what the
quarantine's reason file records.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import re
import time
from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

from simulator import schema
from simulator.validation import ENVIRONMENT_RANGES, TELEMETRY_RANGES, _compatible

KEYS: dict[str, tuple[str, ...]] = {
    "telemetry": ("battery_id", "ts"),
    "environment": ("site_id", "ts"),
    "discharge_events": ("event_id",),
}
TIME_COLUMN = {"telemetry": "ts", "environment": "ts", "discharge_events": "start_ts"}
# A landing file holds about a minute of wall time; at the simulator's highest useful speed
# that is under a day of simulated time. More than this after the batch's first timestamp is
# a wrong clock or a mixed-up file, not a batch.
MAX_SPAN = dt.timedelta(days=1)
# A discharge is landed when it ends, at most 30 days after it started (the engine's cap)
MAX_DISCHARGE = dt.timedelta(days=31)
_DAY_MIN = 31 * 24 * 60.0
EVENT_RANGES: dict[str, tuple[float, float, str]] = {
    "outage_minutes": (0.0, _DAY_MIN, "min"),
    "runtime_minutes": (0.0, _DAY_MIN, "min"),
    "depth_of_discharge": (0.0, 1.0, ""),
    "ah_drawn": (0.0, 100_000.0, "Ah"),
    "min_block_voltage_v": (0.0, 16.0, "V"),
}
RANGES = {"telemetry": TELEMETRY_RANGES, "environment": ENVIRONMENT_RANGES,
          "discharge_events": EVENT_RANGES}
CATEGORIES = {"telemetry": {"mode": schema.MODES},
              "environment": {"hvac_state": schema.HVAC_STATES}, "discharge_events": {}}
_NAME_TS = re.compile(r"^(\d{8}T\d{6}Z)")


@dataclass(frozen=True)
class Problem:
    column: str
    problem: str
    count: int  # offending rows (1 for a schema problem)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BatchValidation:
    table: str
    rows: int
    problems: list[Problem]
    metadata: dict[str, float | int | str]
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _Check:
    key: str  # summary column GX reads (also the metadata key)
    expectation: str
    kwargs: dict[str, Any]
    problem: Problem  # reported if GX fails the expectation; its count is over all rows


def batch_start(name: str) -> dt.datetime | None:
    """The first simulated timestamp a landing name starts with (`20260101T000500Z-000042`)."""
    match = _NAME_TS.match(name)
    if not match:
        return None
    return dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)


def validate_batch(
    df: pl.DataFrame, table: str, *, start: dt.datetime | None = None,
    max_span: dt.timedelta = MAX_SPAN,
) -> BatchValidation:
    """Validate a landed batch of `table` against its contract. `start`: the batch's first
    simulated timestamp (from its name); without it the window is anchored at the earliest
    row, so only the span is checked."""
    began = time.perf_counter()
    problems, usable = _schema_problems(df, schema.TABLES[table])
    checks, summary = _checks(df, table, usable, start, max_span)
    frames = [(_summary(summary), checks)] if checks else []
    frames += [_category_frame(df, col, allowed)
               for col, allowed in CATEGORIES[table].items() if col in usable]
    failed = _run_gx(frames) if df.height else set()
    metadata: dict[str, float | int | str] = {"rows": df.height}
    for frame, batch_checks in frames:
        for check in batch_checks:
            metadata[check.key] = check.problem.count
            if check.key in failed:
                problems.append(check.problem)
    metadata["gx.expectations"] = sum(len(c) for _, c in frames)
    return BatchValidation(table, df.height, problems, metadata, time.perf_counter() - began)


def _schema_problems(df: pl.DataFrame, contract: dict[str, pl.DataType]
                     ) -> tuple[list[Problem], set[str]]:
    problems, usable = [], set()
    for col, expected in contract.items():
        if col not in df.columns:
            problems.append(Problem(col, f"column missing (expected {expected})", 1))
        elif not _compatible(df.schema[col], expected):
            problems.append(Problem(col, f"type {df.schema[col]} is not {expected}", 1))
        else:
            usable.add(col)
    problems += [Problem(col, "column not in the contract", 1)
                 for col in df.columns if col not in contract]
    return problems, usable


def _checks(df: pl.DataFrame, table: str, usable: set[str], start: dt.datetime | None,
            max_span: dt.timedelta) -> tuple[list[_Check], dict[str, Any]]:
    """The expectations, and the summary row they read (computed by Polars in one pass)."""
    values: dict[str, pl.Expr] = {}  # what GX sees
    counts: dict[str, pl.Expr] = {}  # offending rows, for the report
    specs: list[tuple[str, str, dict[str, Any], str, str]] = []

    def expect(key: str, value: pl.Expr, count: pl.Expr, column: str, problem: str,
               expectation: str = "ExpectColumnValuesToBeBetween", **bounds: float) -> None:
        values[key], counts[key] = value, count
        specs.append((key, expectation, {"column": key, **(bounds or {"max_value": 0})},
                      column, problem))

    def at_most_zero(key: str, count: pl.Expr, column: str, problem: str) -> None:
        expect(key, count, count, column, problem)

    for col in sorted(usable):
        missing = pl.col(col).null_count()
        if df.schema[col].is_float():
            missing = missing + pl.col(col).is_nan().sum()
        at_most_zero(f"{col}__missing", missing, col, "null or NaN values")
    for col, (lo, hi, unit) in RANGES[table].items():
        if col in usable:  # GX bounds the minimum and maximum; Polars counts the offenders
            c = pl.col(col).fill_nan(None)
            expect(f"{col}__min", c.min(), (c < lo).sum(), col,
                   f"values below {lo:g} {unit}".rstrip(), min_value=lo)
            expect(f"{col}__max", c.max(), (c > hi).sum(), col,
                   f"values above {hi:g} {unit}".rstrip(), max_value=hi)
    keys = KEYS[table]
    if set(keys) <= usable:
        at_most_zero("keys__duplicates", pl.len() - pl.struct(keys).n_unique(), ", ".join(keys),
                     f"duplicate ({', '.join(keys)}) rows within the batch")
    ts = TIME_COLUMN[table]
    if ts in usable:
        anchor = pl.lit(start) if start is not None else pl.col(ts).min()
        events = table == "discharge_events"
        lower = anchor - MAX_DISCHARGE if events else anchor
        named = f" {start:%Y-%m-%dT%H:%M:%SZ}" if start else ""
        at_most_zero("window__before", (pl.col(ts) < lower).sum(), ts,
                     f"timestamps before the batch's first simulated time{named}"
                     + (f" minus {MAX_DISCHARGE.days} days" if events else ""))
        at_most_zero("window__after", (pl.col(ts) > anchor + max_span).sum(), ts,
                     f"timestamps more than {max_span} after the batch's first simulated time")
    if table == "discharge_events" and {"start_ts", "end_ts"} <= usable:
        duration = pl.col("end_ts") - pl.col("start_ts")
        at_most_zero("end_ts__before_start", (duration < dt.timedelta(0)).sum(), "end_ts",
                     "end_ts before start_ts")
        at_most_zero("end_ts__too_long", (duration > MAX_DISCHARGE).sum(), "end_ts",
                     f"discharges longer than {MAX_DISCHARGE.days} days")
    if not specs:
        return [], {}
    row = df.select(**{f"v:{k}": v for k, v in values.items()},
                    **{f"n:{k}": n for k, n in counts.items()}).row(0, named=True)
    checks = [_Check(key, exp, kwargs, Problem(col, problem, int(row[f"n:{key}"] or 0)))
              for key, exp, kwargs, col, problem in specs]
    return checks, {k: row[f"v:{k}"] for k in values}


def _summary(summary: dict[str, Any]):
    """The one-row frame GX validates."""
    return pl.DataFrame({k: [v] for k, v in summary.items()}).to_pandas()


def _category_frame(df: pl.DataFrame, col: str, allowed: tuple[str, ...]):
    """GX checks the distinct values instead of every row; Polars counts the bad rows."""
    values = df.select(pl.col(col).cast(pl.String)).unique()
    bad = df.filter(pl.col(col).is_not_null() & ~pl.col(col).cast(pl.String).is_in(allowed))
    examples = bad[col].unique().sort().head(3).to_list()
    problem = Problem(col, f"values not in {{{', '.join(allowed)}}} (e.g. {examples})", bad.height)
    check = _Check(f"{col}__unexpected", "ExpectColumnValuesToBeInSet",
                   {"column": col, "value_set": list(allowed)}, problem)
    return values.to_pandas(), [check]


@functools.cache
def _gx_batch_definition():
    """One ephemeral GX context per process: building it costs far more than a validation."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return (context.data_sources.add_pandas("live_batch").add_dataframe_asset("summary")
            .add_batch_definition_whole_dataframe("whole"))


def _run_gx(frames: list) -> set[str]:
    """Validate each frame with its suite; return the keys of failed expectations (an
    expectation that raises counts as failed)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    whole = _gx_batch_definition()
    failed: set[str] = set()
    for i, (frame, checks) in enumerate(frames):
        suite = gx.ExpectationSuite(name=f"live-{i}", expectations=[
            getattr(gxe, c.expectation)(**c.kwargs, meta={"check": c.key}) for c in checks])
        result = whole.get_batch(batch_parameters={"dataframe": frame}).validate(
            suite, result_format="BOOLEAN_ONLY")
        failed |= {r.expectation_config.meta["check"] for r in result.results if not r.success}
    return failed
