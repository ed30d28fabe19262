"""Capacity measurements as point-in-time features: the latest capacity test, and the unit's
new resistance implied by the last year's tests and deep discharges (models.projection).

Both read only the maintenance table and the per-day telemetry aggregates of
models.features, never the truth.
"""

from __future__ import annotations

import polars as pl

from models.projection import new_resistance
from simulator import physics as ph

# Capacity measurements older than this are dropped from the new-resistance estimate: the
# fleet-typical resistance gain extrapolates worse the further the unit has worn since.
MEASUREMENT_MEMORY_DAYS = 365


def new_resistance_estimate(daily: pl.DataFrame, batteries: pl.DataFrame,
                             maintenance: pl.DataFrame | None,
                             p: ph.PhysicsParams) -> pl.DataFrame:
    """`r0_est`: the unit's resistance when new, implied by each capacity measurement of the
    last MEASUREMENT_MEMORY_DAYS (capacity test or deep discharge, paired with the 30-day
    resistance that day; models.projection) and averaged, so that each extra measurement
    beats down the ~2 % error of a single one."""
    soh = [pl.col("discharge_soh") * 100]
    if maintenance is not None and maintenance.height:
        tests = (maintenance.filter(pl.col("event_type") == "capacity_test")
                 .join(batteries.select("battery_id", "rated_capacity_ah"), on="battery_id")
                 .group_by("battery_id", day=pl.col("ts").dt.truncate("1d"))
                 .agg(test_soh=(pl.col("measured_capacity_ah")
                                / pl.col("rated_capacity_ah")).mean() * 100))
        daily = daily.join(tests, on=["battery_id", "day"], how="left")
        soh.append(pl.col("test_soh"))
    inv_r0 = [1.0 / new_resistance(s, pl.col("r_30d"), p) for s in soh]

    def roll(e: pl.Expr) -> pl.Expr:
        return e.rolling_sum(MEASUREMENT_MEMORY_DAYS, min_samples=1).over(
            "battery_id", order_by="day")
    total = pl.sum_horizontal(roll(e.fill_null(0.0)) for e in inv_r0)
    count = pl.sum_horizontal(roll(e.is_not_null().cast(pl.Float64)) for e in inv_r0)
    out = daily.with_columns(r0_est=pl.when(count > 0).then(count / total))
    return out.drop("test_soh") if "test_soh" in out.columns else out


def capacity_tests(out: pl.DataFrame, daily: pl.DataFrame,
                    maintenance: pl.DataFrame | None) -> pl.DataFrame:
    """The latest capacity test before the snapshot (as SoH %), its age in days and the
    unit's 30-day resistance on the test day (the anchor for projecting SoH forward)."""
    cols = {"last_capacity_test_soh": pl.Float64, "capacity_test_age_days": pl.Float64,
            "r_at_capacity_test": pl.Float64}
    if maintenance is None or maintenance.height == 0:
        return out.with_columns(*(pl.lit(None, dtype=t).alias(c) for c, t in cols.items()))
    tests = (maintenance.filter(pl.col("event_type") == "capacity_test")
             .select("battery_id", test_ts="ts", measured="measured_capacity_ah")
             .with_columns(day=pl.col("test_ts").dt.truncate("1d"))
             .join(daily.select("battery_id", "day", r_at_capacity_test="r_30d"),
                   on=["battery_id", "day"], how="left")
             .drop("day").sort("test_ts"))
    joined = out.sort("ts").join_asof(tests, left_on="ts", right_on="test_ts", by="battery_id",
                                      strategy="backward", allow_exact_matches=False,
                                      check_sortedness=False)  # sorted above, per battery
    return joined.with_columns(
        last_capacity_test_soh=100 * pl.col("measured") / pl.col("rated_capacity_ah"),
        capacity_test_age_days=(pl.col("ts") - pl.col("test_ts")).dt.total_hours() / 24.0,
    ).drop("measured", "test_ts")
