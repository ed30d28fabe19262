"""Stored daily rows, computed: one source's telemetry summarised per battery and day, sources
merged, and a range of days recomputed from the rows before it (models.daily_store keeps
them in the lake).

A row holds the day's `models.features.daily_aggregates` (the feature code path of training
and `rul predict`) plus the measurement-quality counts `rul predict` checks, then what
models.daily_features derives per day: cleaned ohmics, `r_30d`, the life accumulators and the
baselines known so far. Those look back at most CONTEXT_DAYS or through the battery's
previous row (the carry), so a day never needs the raw history again.

Mixed sampling: the history is hourly, live readings come every simulator tick. Each source
is aggregated per day at its own step (history: per site file; live: per day), so the hours
and ampere-hours (`* step`) are right, and its reading counts and the sums weighted by them are
converted to reading-hours (count x step / 1 h): a day read every 5 minutes weighs in the
means like a day read hourly, and `rul predict`'s share-of-readings checks stay shares. Where a
battery-day has readings from both, live readings up to the history's last timestamp of the
site are left out and the two summaries merged (`combine`: sums added, extremes combined,
ohmics averaged over float reading-hours, the live deep-discharge reading preferred).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from models import daily_features as df_
from models.capacity import c10_soh
from models.daily_features import DAY, KEY
from models.features import BASELINE_DAYS, FIRST_DAYS, daily_aggregates

REFERENCE_STEP_S = 3600  # counts are stored as reading-hours (count x step / REFERENCE_STEP_S)
COUNTS = ("rows", "temp_sum", "float_dev_sum", "float_rows", "float_current_sum",
          "n_voltage", "n_current", "n_temp")
# Days before a recomputed day that it reads: the ohmic median and 30-day mean of every
# battery, the whole baseline window (BASELINE_DAYS) of one installed less than 180 days ago
CLEAN_CONTEXT_DAYS = df_.OHMIC_MEDIAN_DAYS + df_.R_MEAN_DAYS
CONTEXT_DAYS = max(CLEAN_CONTEXT_DAYS, BASELINE_DAYS[1] - BASELINE_DAYS[0] + 1)
CONTEXT = [KEY, DAY, "resistance_raw", "conductance_raw", "resistance", "conductance"]
QUALITY_SUMS = ("n_voltage", "n_current", "n_temp")
EPOCH = dt.date(1970, 1, 1)  # day numbers (`day_no`) count from here
BASELINE = ["r_base", "r_first30", "first30_ready", "first30_days"]
RAW = ["rows", "temp_sum", "temp_max", "hours_above_30", "hours_above_35", "arrhenius_hours",
       "float_dev_sum", "float_rows", "float_current_sum", "resistance_raw", "conductance_raw",
       "discharge_ah", "discharge_depth", "discharge_min_v", "discharge_x", *QUALITY_SUMS,
       "has_resistance", "v_min", "v_max", "t_min", "t_max", "ohm_min", "ohm_max", "last_ts"]
CARRY = [*df_.LIFE_COLUMNS, *(f"life_{c}" for c in QUALITY_SUMS), "life_last_ts", *BASELINE]


def summarise(telemetry: pl.LazyFrame, step_s: int, per_bat: pl.DataFrame) -> pl.DataFrame:
    """One source's rows per battery and day: `daily_aggregates` and the measurement-quality
    counts, counts in reading-hours."""
    day = pl.col("ts").dt.truncate("1d")
    quality = telemetry.group_by(KEY, **{DAY: day}).agg(
        n_voltage=pl.col("voltage_v").count(), n_current=pl.col("current_a").count(),
        n_temp=pl.col("temperature_c").count(),
        has_resistance=pl.col("resistance_mohm").count() > 0,
        v_min=pl.col("voltage_v").min(), v_max=pl.col("voltage_v").max(),
        t_min=pl.col("temperature_c").min(), t_max=pl.col("temperature_c").max(),
        ohm_min=pl.col("resistance_mohm").min(), ohm_max=pl.col("resistance_mohm").max(),
        last_ts=pl.col("ts").max())
    scale = step_s / REFERENCE_STEP_S
    return (daily_aggregates(telemetry, step_s, per_bat).join(quality, on=[KEY, DAY])
            .rename({"resistance": "resistance_raw", "conductance": "conductance_raw"})
            .with_columns(pl.col(c).cast(pl.Float64) * scale for c in COUNTS)
            .collect(engine="streaming").select(KEY, DAY, *RAW))


def combine(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Summaries of several sources merged per battery-day (later parts win the deep-discharge
    reading); a battery-day from one source is kept as it is."""
    both = pl.concat([p.with_columns(_src=pl.lit(i)) for i, p in enumerate(parts)
                      if p.height], how="diagonal_relaxed")
    if both.is_empty():
        return both
    shared = both.group_by(KEY, DAY).len().filter(pl.col("len") > 1).select(KEY, DAY)
    if shared.is_empty():
        return both.drop("_src")

    def total(c: str) -> pl.Expr:
        return pl.when(pl.col(c).count() > 0).then(pl.col(c).sum())

    def mean(c: str) -> pl.Expr:
        w = pl.when(pl.col(c).is_not_null()).then(pl.col("float_rows"))
        return (pl.col(c) * w).sum() / w.sum()
    sums = ["rows", "temp_sum", "hours_above_30", "hours_above_35", "arrhenius_hours",
            "float_dev_sum", "float_rows", "float_current_sum", "discharge_ah", *QUALITY_SUMS]
    merged = both.join(shared, on=[KEY, DAY]).group_by(KEY, DAY).agg(
        *[total(c) for c in sums],
        *[pl.col(c).max() for c in ("temp_max", "discharge_depth", "v_max", "t_max", "ohm_max",
                                     "last_ts", "has_resistance")],
        *[pl.col(c).min() for c in ("discharge_min_v", "v_min", "t_min", "ohm_min")],
        mean("resistance_raw"), mean("conductance_raw"),
        discharge_x=pl.col("discharge_x").sort_by("_src").drop_nulls().last())
    single = both.join(shared, on=[KEY, DAY], how="anti").drop("_src")
    return pl.concat([single, merged.select(single.columns)], how="vertical_relaxed")


def recompute(raw: pl.DataFrame, context: pl.DataFrame | None, carry: pl.DataFrame | None,
              install: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The stored rows of the days in `raw` (summaries from their first day on) from the
    stored rows of the CONTEXT_DAYS before (`context`) and each battery's last stored row
    before them (`carry`): (rows to store, the day grid with `r_30d` on every day)."""
    start = raw[DAY].min()
    new = raw.with_columns(resistance=pl.col("resistance_raw"),
                           conductance=pl.col("conductance_raw"))
    if context is not None and context.height:
        old = context.select(KEY, DAY, "resistance_raw", "conductance_raw",
                             _clean_r="resistance", _clean_g="conductance")
        new = pl.concat([old.with_columns(resistance=pl.col("resistance_raw"),
                                          conductance=pl.col("conductance_raw")), new],
                        how="diagonal_relaxed")
    grid = df_.clean_ohmics(df_.day_grid(new))
    if "_clean_r" in grid.columns:  # earlier days keep the values they were stored with
        old_day = pl.col(DAY) < start
        grid = grid.with_columns(
            resistance=pl.when(old_day).then("_clean_r").otherwise("resistance"),
            conductance=pl.when(old_day).then("_clean_g").otherwise("conductance"),
        ).drop("_clean_r", "_clean_g")
    grid = grid.with_columns(r_30d=df_.rolling_mean("resistance", df_.R_MEAN_DAYS))
    first = pl.col("day_no").min().over(KEY)
    if carry is not None and carry.height:
        grid = grid.join(carry.select(KEY, _first="life_first_day"), on=KEY, how="left")
        first = pl.coalesce("_first", first)
    grid = grid.with_columns(_first_no=first).with_columns(
        _obs=pl.col("day_no") - pl.col("_first_no") + 1)
    grid = _baselines_so_far(grid, install, carry, start)
    rows = df_.life_accumulators(grid.filter(pl.col(DAY) >= start), carry)
    rows = _quality_life(rows, carry).filter(pl.col("last_ts").is_not_null())
    return rows.select(KEY, DAY, "day_no", *RAW, "resistance", "conductance", "r_30d",
                       *CARRY), grid.select(KEY, DAY, "r_30d")


def _baselines_so_far(grid: pl.DataFrame, install: pl.DataFrame, carry: pl.DataFrame | None,
                      start: dt.datetime) -> pl.DataFrame:
    """`models.features.baselines` as known at each day: the medians over the window days
    seen so far, frozen once the window has passed. Computed from `start` on, for the
    batteries whose window is still open then (it never starts before the context, so the
    medians are whole); a window closed before is the carry's."""
    since = (pl.col(DAY).dt.date() - pl.col("install_date")).dt.total_days()
    base_len = BASELINE_DAYS[1] - BASELINE_DAYS[0] + 1
    in_base, in_first = since.is_between(*BASELINE_DAYS), pl.col("_obs") <= FIRST_DAYS
    new = pl.col(DAY) >= start

    def running_median(inside: pl.Expr, n: int, until: pl.Expr) -> pl.Expr:
        median = pl.when(inside).then(pl.col("resistance")).rolling_median(n, min_samples=1)
        return pl.when(until & new).then(median).forward_fill().over(KEY, order_by=DAY)
    grid = grid.join(install.select(KEY, "install_date"), on=KEY, how="left").with_columns(
        first30_ready=pl.col(DAY) - pl.duration(days=(pl.col("_obs") - FIRST_DAYS).clip(0)),
        first30_days=pl.col("_obs").clip(upper_bound=FIRST_DAYS).cast(pl.UInt32),
        _open=((pl.col("install_date") >= start.date() - dt.timedelta(days=BASELINE_DAYS[1]))
               | (pl.col("_first_no") > (start.date() - EPOCH).days - FIRST_DAYS)
               ).fill_null(True))
    young = grid.filter(pl.col("_open")).with_columns(
        r_base=running_median(in_base, base_len, since <= BASELINE_DAYS[1]),
        r_first30=running_median(in_first, FIRST_DAYS, in_first))
    grid = pl.concat([young, grid.filter(~pl.col("_open")).with_columns(
        r_base=pl.lit(None, dtype=pl.Float64), r_first30=pl.lit(None, dtype=pl.Float64))],
        how="vertical_relaxed").drop("install_date", "_obs", "_first", "_first_no", "_open",
                                     strict=False)
    if carry is None or not carry.height:
        return grid
    old = carry.select(KEY, *(pl.col(c).alias(f"{c}__carry") for c in ("r_base", "r_first30")))
    return grid.join(old, on=KEY, how="left").with_columns(
        r_base=pl.col("r_base").fill_null(pl.col("r_base__carry")),
        r_first30=pl.col("r_first30").fill_null(pl.col("r_first30__carry")),
    ).drop("r_base__carry", "r_first30__carry")


def _quality_life(rows: pl.DataFrame, carry: pl.DataFrame | None) -> pl.DataFrame:
    """Life totals of the quality counts and the last reading's time, continuing `carry`."""
    rows = rows.with_columns(
        **{f"life_{c}": pl.col(c).fill_null(0).cum_sum().over(KEY, order_by=DAY)
           for c in QUALITY_SUMS},
        life_last_ts=pl.col("last_ts").cum_max().forward_fill().over(KEY, order_by=DAY))
    if carry is None or not carry.height:
        return rows
    names = [*(f"life_{c}" for c in QUALITY_SUMS), "life_last_ts"]
    old = carry.select(KEY, *(pl.col(c).alias(f"{c}__carry") for c in names))
    return rows.join(old, on=KEY, how="left").with_columns(
        *[pl.col(c) + pl.col(f"{c}__carry").fill_null(0) for c in names[:-1]],
        life_last_ts=pl.max_horizontal("life_last_ts", "life_last_ts__carry"),
    ).drop(f"{c}__carry" for c in names)


def capacity_test_days(grid: pl.DataFrame, maintenance: pl.DataFrame,
                       batteries: pl.DataFrame) -> pl.DataFrame:
    """battery_id, day, r_30d of every capacity-test day inside a battery's grid (what
    `models.capacity.capacity_tests` reads of the daily rows)."""
    tests = c10_soh(maintenance, batteries).select(KEY, **{DAY: pl.col("ts").dt.truncate("1d")})
    return grid.join(tests.unique(), on=[KEY, DAY]).select(KEY, DAY, "r_30d").sort(KEY, DAY)
