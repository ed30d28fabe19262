"""Reading and checking the files `rul predict` is given, and writing its result.

Field exports are messy: CSV or Parquet, naive or zoned timestamps, rows out of order or sent
twice, millivolts instead of volts. What is safe to repair (exact duplicate rows, time order) is
repaired and reported; everything else stops with one `InputError` naming the file and the
column, before any work, so a wrong number never reaches an operator.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from simulator.atomic import atomic_path
from simulator.schema import BATTERIES, MAINTENANCE_EVENTS, TELEMETRY, TS

FORMATS = (".csv", ".parquet")
# Only what the features read: string_id and site_id may be absent from a monitor's export.
TELEMETRY_COLUMNS = {c: TELEMETRY[c] for c in (
    "ts", "battery_id", "voltage_v", "current_a", "temperature_c", "resistance_mohm",
    "conductance_s", "soc_pct", "mode")}
BATTERY_COLUMNS = {c: BATTERIES[c] for c in (
    "battery_id", "battery_model", "rated_capacity_ah", "install_date", "site_id")}
OPTIONAL_BATTERY_COLUMNS = {"removed_date": pl.Date}  # used to skip units already replaced
MAINTENANCE_COLUMNS = {c: MAINTENANCE_EVENTS[c] for c in (
    "ts", "battery_id", "event_type", "measured_capacity_ah")}
MODES = ("float", "boost", "equalize", "discharge")
EXAMPLES = 3
UNIT_SAMPLE = 100_000  # rows whose medians judge the units: plenty, and cheap on 30 M rows

# What the features measure with: a file where one of these is empty says nothing about the
# batteries, and a number scored from it would be a guess.
MEASUREMENTS = ("voltage_v", "current_a", "temperature_c", "resistance_mohm")
# No real sensor holds one value to the last digit for two weeks (noise, daily cycle, ageing),
# so a whole file of one value is a placeholder or a stuck feed. Current is left out: on float
# a monitor with coarse resolution can report the same small current for days.
NEVER_CONSTANT = ("voltage_v", "temperature_c", "resistance_mohm")
CONSTANT_SPAN = dt.timedelta(days=14)  # models.features.MIN_HISTORY_DAYS: enough to be scored
# (column, test on the median, what it means): medians catch a wrong unit, not a few bad rows
UNIT_CHECKS = (
    ("voltage_v", lambda m: m > 100, "looks like millivolts; expected volts per 12 V block"),
    ("temperature_c", lambda m: m > 200, "looks like kelvin; expected degrees Celsius"),
    ("resistance_mohm", lambda m: m < 0.1, "looks like ohms; expected milliohms"),
)


class InputError(ValueError):
    """A bad input file; the message is `<file>: <column>: <problem>`, shown to the user as is."""


@dataclass
class Inputs:
    telemetry: pl.DataFrame
    batteries: pl.DataFrame
    maintenance: pl.DataFrame | None
    notes: list[str] = field(default_factory=list)  # what was assumed or repaired, for stderr


def load_inputs(telemetry: str | Path, batteries: str | Path,
                maintenance: str | Path | None = None) -> Inputs:
    """Read and check all input files; telemetry ids must all be in the batteries file."""
    notes: list[str] = []
    bat = load_batteries(batteries, notes)
    tel = load_telemetry(telemetry, notes)
    unknown = tel.select(pl.col("battery_id").unique()).join(bat, on="battery_id", how="anti")
    if unknown.height:
        ids = ", ".join(sorted(unknown["battery_id"])[:EXAMPLES])
        raise InputError(f"{telemetry}: battery_id: {unknown.height:,} ids are not in "
                         f"{batteries} (e.g. {ids})")
    mnt = load_maintenance(maintenance, notes) if maintenance is not None else None
    return Inputs(tel, bat, mnt, notes)


def load_telemetry(path: str | Path, notes: list[str]) -> pl.DataFrame:
    df = _read(path, TELEMETRY_COLUMNS, notes)
    _no_nulls(df, path, ("battery_id", "ts"))
    if df.height == 0:
        raise InputError(f"{path}: no rows")
    unknown = sorted(set(df["mode"].drop_nulls().unique()) - set(MODES))
    if unknown:
        raise InputError(f"{path}: mode: unknown value {unknown[0]!r}; "
                         f"expected one of {', '.join(MODES)}")
    _measured(df, path)
    sample = df.sample(min(df.height, UNIT_SAMPLE), seed=0)
    for column, wrong, meaning in UNIT_CHECKS:
        median = sample[column].median()
        if median is not None and wrong(median):
            raise InputError(f"{path}: {column}: median {median:,.4g} {meaning}")
    return _repair(df, path, notes)


def load_batteries(path: str | Path, notes: list[str]) -> pl.DataFrame:
    from simulator.config import load_fleet

    df = _read(path, BATTERY_COLUMNS, notes, OPTIONAL_BATTERY_COLUMNS)
    _no_nulls(df, path, ("battery_id", "battery_model", "rated_capacity_ah", "install_date"))
    if df.height == 0:
        raise InputError(f"{path}: no rows")
    repeated = df.filter(pl.col("battery_id").is_duplicated())["battery_id"].unique().sort()
    if repeated.len():
        raise InputError(f"{path}: battery_id: {repeated.len():,} ids appear more than once "
                         f"(e.g. {', '.join(repeated[:EXAMPLES])})")
    known = sorted(m.code for m in load_fleet().battery_models)  # the features' design data
    odd = df.filter(~pl.col("battery_model").is_in(known))["battery_model"]
    if odd.len():
        raise InputError(f"{path}: battery_model: unknown model {odd[0]!r}; known: "
                         f"{', '.join(known)}")
    if (df["rated_capacity_ah"] <= 0).any():
        raise InputError(f"{path}: rated_capacity_ah: must be positive")
    return df


def load_maintenance(path: str | Path, notes: list[str]) -> pl.DataFrame:
    """Maintenance events; a file with a header and no rows simply means no events."""
    df = _read(path, MAINTENANCE_COLUMNS, notes)
    _no_nulls(df, path, ("battery_id", "ts", "event_type"))
    return df


def write_table(df: pl.DataFrame, path: str | Path) -> None:
    """Write CSV or Parquet by extension via a temporary file renamed into place, so a failed
    run never leaves a partial or stale-looking result behind."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".csv":
            df.write_csv(tmp)
        else:
            df.write_parquet(tmp)


def parse_as_of(text: str, name: str = "--as-of") -> dt.datetime:
    """A date or timestamp, naive meaning UTC, floored to 00:00 UTC: the model scores whole
    days, as its training snapshots did."""
    try:
        ts = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"{name}: expected a date like 2025-06-01, got {text!r}") from None
    ts = ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts.astimezone(dt.UTC)
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def check_format(path: str | Path, what: str) -> None:
    if Path(path).suffix.lower() not in FORMATS:
        raise InputError(f"{what}: expected a .csv or .parquet file, got {str(path)!r}")


def _read(path: str | Path, columns: dict[str, pl.DataType], notes: list[str],
          optional: dict[str, pl.DataType] | None = None) -> pl.DataFrame:
    """Read the wanted columns as their contract types (CSV is read as text, then converted, so
    a bad value is reported by column instead of failing the whole parse)."""
    check_format(path, str(path))
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: file not found")
    if p.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    csv = p.suffix.lower() == ".csv"
    kind = "CSV" if csv else "Parquet"
    try:
        lazy = pl.scan_csv(p, infer_schema=False) if csv else pl.scan_parquet(p)
        present = lazy.collect_schema().names()
        missing = [c for c in columns if c not in present]
        if missing:
            raise InputError(f"{path}: {', '.join(missing)}: missing column"
                             f"{'s' if len(missing) > 1 else ''}")
        wanted = {**columns, **{c: t for c, t in (optional or {}).items() if c in present}}
        # CSV: parse every column, or a ragged line would pass unnoticed under projection
        df = _read_csv(p, wanted) if csv else lazy.select(list(wanted)).collect()
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{path}: cannot read as {kind}: {str(exc).splitlines()[0]}") from None
    return df.with_columns(_convert(df[c], t, path, notes) for c, t in wanted.items())


def _read_csv(path: Path, wanted: dict[str, pl.DataType]) -> pl.DataFrame:
    """Numbers parsed by the CSV reader itself (a whole-fleet file: 3x faster and half the
    memory of text, measured); if any value does not parse, the file is read again as text so
    `_convert` can name the column and the values."""
    numeric = {c: t for c, t in wanted.items() if t.is_numeric()}
    try:
        typed = pl.scan_csv(path, infer_schema=False, schema_overrides=numeric).collect()
    except pl.exceptions.ComputeError:
        typed = pl.scan_csv(path, infer_schema=False).collect()
    return typed.select(list(wanted))


def _convert(s: pl.Series, dtype: pl.DataType, path, notes: list[str]) -> pl.Series:
    if dtype == TS:
        out = _timestamps(s, path, notes)
    elif dtype == pl.Date:
        out = _dates(s)
    elif dtype.is_numeric():
        text = s.str.strip_chars() if s.dtype == pl.String else s
        out = text.cast(dtype, strict=False)
    else:
        out = s.cast(dtype)
    bad = s.filter(out.is_null() & s.is_not_null())
    if bad.len():
        what = {TS: "timestamps", pl.Date: "dates"}.get(dtype, "numbers")
        raise InputError(f"{path}: {s.name}: {bad.len():,} values are not {what} "
                         f"(e.g. {bad[0]!r})")
    return out


def _timestamps(s: pl.Series, path, notes: list[str]) -> pl.Series:
    """Zoned timestamps are converted to UTC; naive ones are taken as UTC, and the user told."""
    if s.dtype == pl.String:
        # a fleet file repeats each time once per battery: parse each distinct text once
        # (34 M rows: 1 s instead of 9 s, measured)
        distinct = s.drop_nulls().unique()
        try:
            parsed = distinct.str.strip_chars().str.to_datetime(time_unit="us", strict=False)
        except pl.exceptions.ComputeError:  # no format fits the first values
            raise InputError(f"{path}: {s.name}: values are not timestamps "
                             f"(e.g. {s.drop_nulls()[0]!r})") from None
        s = s.replace_strict(distinct, parsed, default=None, return_dtype=parsed.dtype)
    elif s.dtype == pl.Date:
        s = s.cast(pl.Datetime("us"))
    elif not isinstance(s.dtype, pl.Datetime):
        raise InputError(f"{path}: {s.name}: expected timestamps, got {s.dtype}")
    if s.dtype.time_zone is None:
        notes.append(f"{path}: {s.name}: timestamps have no time zone; read as UTC")
        s = s.dt.replace_time_zone("UTC")
    return s.dt.convert_time_zone("UTC").cast(TS)


def _dates(s: pl.Series) -> pl.Series:
    if s.dtype == pl.String:
        return s.str.strip_chars().str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    return s.dt.date() if isinstance(s.dtype, pl.Datetime) else s.cast(pl.Date, strict=False)


def _no_nulls(df: pl.DataFrame, path, columns: tuple[str, ...]) -> None:
    for c in columns:
        n = df[c].null_count()
        if n:
            raise InputError(f"{path}: {c}: {n:,} empty values")


def _measured(df: pl.DataFrame, path) -> None:
    """Refuse a file whose measurement column is empty throughout, or one value throughout a
    span long enough to be scored (batteries missing a measurement for most of their own
    history are left to the scoring, as insufficient data)."""
    stats = df.select(
        *[pl.col(c).null_count().alias(f"{c}.nulls") for c in MEASUREMENTS],
        *[pl.col(c).min().alias(f"{c}.min") for c in NEVER_CONSTANT],
        *[pl.col(c).max().alias(f"{c}.max") for c in NEVER_CONSTANT],
        span=pl.col("ts").max() - pl.col("ts").min()).row(0, named=True)
    for c in MEASUREMENTS:
        if stats[f"{c}.nulls"] == df.height:
            raise InputError(f"{path}: {c}: all {df.height:,} values are empty")
    if stats["span"] >= CONSTANT_SPAN:
        for c in NEVER_CONSTANT:
            if stats[f"{c}.min"] == stats[f"{c}.max"]:
                raise InputError(f"{path}: {c}: every value is {stats[f'{c}.min']:g} over "
                                 f"{stats['span'].days} days; a stuck sensor or a placeholder")


def _repair(df: pl.DataFrame, path, notes: list[str]) -> pl.DataFrame:
    """Drop rows sent twice and sort batteries whose readings are out of time order; refuse two
    different readings for the same battery and time (which one is right cannot be known).
    The smallest time step per battery decides whether the costlier repairs are needed."""
    if (_min_steps(df) > dt.timedelta(0)).all():
        return df
    repaired, before = [], df.height
    df = df.unique(maintain_order=True)
    if df.height < before:
        repaired.append(f"dropped {before - df.height:,} duplicate rows")
    unsorted = int((_min_steps(df) < dt.timedelta(0)).sum())
    if unsorted:
        df = df.sort("battery_id", "ts", maintain_order=True)
        repaired.append(f"sorted {unsorted:,} batter{'y' if unsorted == 1 else 'ies'}")
    clash = df.filter(pl.col("ts").diff().over("battery_id") == 0)
    if clash.height:
        first = clash.row(0, named=True)
        raise InputError(
            f"{path}: ts: {clash.height:,} readings conflict with another for the same "
            f"battery_id and ts (e.g. {first['battery_id']} at {first['ts']:%Y-%m-%d %H:%M}Z); "
            "remove the wrong ones")
    notes.append(f"{path}: repaired: {'; '.join(repaired)}")
    return df


def _min_steps(df: pl.DataFrame) -> pl.Series:
    """Each battery's smallest step between consecutive rows: negative means out of order,
    zero a repeated time. An eager group_by keeps the row order within each group
    (documented), and is faster here than a window over 30 M rows."""
    return df.group_by("battery_id").agg(pl.col("ts").diff().min())["ts"].fill_null(
        dt.timedelta(1))
