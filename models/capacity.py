"""Capacity measurements as point-in-time features: the latest capacity test, and the means
over the last year's tests and deep discharges from which `models.laws` recovers the unit's
new resistance once the resistance law is fitted.

Both read only the maintenance table and the per-day telemetry aggregates of
models.features, never the truth. Capacity tests are read as C10-equivalent SoH: a test at
the t-hour rate delivers (t / 10)^((k - 1) / k) of the C10 capacity (Peukert, with the
datasheet exponent k of the battery model; IEEE 450 corrects test results for the rate).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from models.laws import MEASUREMENT_MEANS, datasheet
from simulator.physics import rate_capacity_fraction

# Capacity measurements older than this are dropped from the new-resistance estimate: the
# fleet-typical resistance gain extrapolates worse the further the unit has worn since.
MEASUREMENT_MEMORY_DAYS = 365
RATED_HOURS = 10.0  # C10: the rating's own rate, assumed where a test does not record its rate


def c10_soh(maintenance: pl.DataFrame, batteries: pl.DataFrame) -> pl.DataFrame:
    """battery_id, ts and the C10-equivalent SoH (fraction of rating) of every capacity test."""
    tests = maintenance.filter(pl.col("event_type") == "capacity_test")
    hours = (tests["test_rate_hours"].fill_null(RATED_HOURS) if "test_rate_hours" in tests.columns
             else pl.Series([RATED_HOURS] * tests.height))
    tests = tests.with_columns(hours=hours).join(
        batteries.select("battery_id", "battery_model", "rated_capacity_ah"), on="battery_id"
    ).join(datasheet().select("battery_model", "peukert_exponent"), on="battery_model",
           how="left")
    share = rate_capacity_fraction(tests["hours"].to_numpy(),
                                   tests["peukert_exponent"].to_numpy())
    return tests.select("battery_id", "ts", soh=pl.col("measured_capacity_ah")
                        / pl.col("rated_capacity_ah") / pl.Series(np.asarray(share)).fill_nan(None))


def measurement_means(daily: pl.DataFrame, tests: pl.DataFrame | None) -> pl.DataFrame:
    """MEASUREMENT_MEANS per battery-day over the capacity measurements of the last
    MEASUREMENT_MEMORY_DAYS, each paired with the 30-day resistance R that day: the means of
    1 / R over all, of SoH / R over tests, and of x^k / R (k = 0, 1, 2) over deep discharges
    (x: Ah share drawn per volt), which is all `Laws.new_resistance_avg` needs."""
    if tests is not None and tests.height:
        daily = daily.join(tests.group_by("battery_id", day=pl.col("ts").dt.truncate("1d"))
                           .agg(test_soh=pl.col("soh").mean()), on=["battery_id", "day"],
                           how="left")
    else:
        daily = daily.with_columns(test_soh=pl.lit(None, dtype=pl.Float64))
    inv_r, x = 1.0 / pl.col("r_30d"), pl.col("discharge_x")
    on_test = pl.col("test_soh").is_not_null() & inv_r.is_not_null()
    on_dis = x.is_not_null() & inv_r.is_not_null()
    terms = [pl.when(on_test).then(inv_r).otherwise(0.0) + pl.when(on_dis).then(inv_r)
             .otherwise(0.0), pl.when(on_test).then(pl.col("test_soh") * inv_r),
             *(pl.when(on_dis).then(x.pow(k) * inv_r) for k in range(3))]

    def roll(e: pl.Expr) -> pl.Expr:
        return e.fill_null(0.0).rolling_sum(MEASUREMENT_MEMORY_DAYS, min_samples=1).over(
            "battery_id", order_by="day")
    count = roll(on_test.cast(pl.Float64) + on_dis.cast(pl.Float64))
    return daily.with_columns(**{name: pl.when(count > 0).then(roll(e) / count)
                                 for name, e in zip(MEASUREMENT_MEANS, terms, strict=True)}
                              ).drop("test_soh")


def capacity_tests(out: pl.DataFrame, daily: pl.DataFrame,
                   tests: pl.DataFrame | None) -> pl.DataFrame:
    """The latest capacity test before the snapshot (C10-equivalent SoH %), its age in days
    and the unit's 30-day resistance on the test day (the anchor for projecting SoH)."""
    cols = {"last_capacity_test_soh": pl.Float64, "capacity_test_age_days": pl.Float64,
            "r_at_capacity_test": pl.Float64}
    if tests is None or tests.height == 0:
        return out.with_columns(*(pl.lit(None, dtype=t).alias(c) for c, t in cols.items()))
    tests = (tests.select("battery_id", "soh", test_ts="ts")
             .with_columns(day=pl.col("test_ts").dt.truncate("1d"))
             .join(daily.select("battery_id", "day", r_at_capacity_test="r_30d"),
                   on=["battery_id", "day"], how="left")
             .drop("day").sort("test_ts"))
    joined = out.sort("ts").join_asof(tests, left_on="ts", right_on="test_ts", by="battery_id",
                                      strategy="backward", allow_exact_matches=False,
                                      check_sortedness=False)  # sorted above, per battery
    return joined.with_columns(
        last_capacity_test_soh=100 * pl.col("soh"),
        capacity_test_age_days=(pl.col("ts") - pl.col("test_ts")).dt.total_hours() / 24.0,
    ).drop("soh", "test_ts")
