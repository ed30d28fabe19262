"""An oracle reference: RUL projected from the hidden true capacity and its true recent fade.

It sees what no model can (the exact capacity now and its slope over the last 90 days) and
extrapolates linearly to 80 % of rating. Its remaining error comes from what happens later:
fade speeding up near the knee, hot spells, deep discharges, sudden shorts. That is the floor
a model could approach with perfect state estimation; used for evaluation only.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from models.features import KEYS

WINDOW_DAYS = 90  # recent fade: long enough to average daily noise, short enough to be current
MIN_WINDOW_DAYS = 7  # fewer days of truth behind a snapshot: too short for a slope
EOL_SOH_PCT = 80.0  # IEEE 450 / 1188 end of life
MAX_DAYS = 3650.0  # no fade seen yet: report ten years rather than infinity


def oracle_rul(frame: pl.DataFrame, truth: pl.DataFrame) -> np.ndarray:
    """Oracle RUL in days for each row of `frame` (battery_id, ts), in the frame's row order."""
    soh = truth.select(*KEYS, "soh_pct")
    first = soh.group_by("battery_id").agg(first_ts=pl.col("ts").min())
    rows = (
        frame.select(KEYS).with_row_index("_row")
        .join(first, on="battery_id", how="left")
        .with_columns(past_ts=pl.max_horizontal(pl.col("ts") - pl.duration(days=WINDOW_DAYS),
                                                "first_ts"))
        .join(soh, on=KEYS, how="left")
        .join(soh.rename({"ts": "past_ts", "soh_pct": "past_soh"}), on=["battery_id", "past_ts"],
              how="left")
        .with_columns(days=(pl.col("ts") - pl.col("past_ts")).dt.total_hours() / 24.0)
        .with_columns(slope=pl.when(pl.col("days") >= MIN_WINDOW_DAYS)
                      .then((pl.col("soh_pct") - pl.col("past_soh")) / pl.col("days")))
        .with_columns(oracle=pl.when(pl.col("soh_pct") <= EOL_SOH_PCT).then(0.0)
                      .when(pl.col("slope") < 0)
                      .then((pl.col("soh_pct") - EOL_SOH_PCT) / -pl.col("slope"))
                      .otherwise(MAX_DAYS))
        .sort("_row")
    )
    return rows["oracle"].clip(0.0, MAX_DAYS).fill_null(MAX_DAYS).to_numpy()


# Estimates of today's SoH among the features, each scored against the true SoH
SOH_ESTIMATES = {"last_test": "last_capacity_test_soh", "projected": "soh_projected_pct",
                 "projected_avg": "soh_projected_avg_pct"}


def soh_estimation_metrics(derived: pl.DataFrame, truth: pl.DataFrame,
                           label: str) -> dict[str, float]:
    """Mean absolute error, in SoH points, of the features' estimates of today's capacity
    against the hidden true SoH, for all rows and for rows within a year of end of life: what
    limits the model near end of life is how well it can know today's capacity."""
    rows = derived.join(truth.select(*KEYS, "soh_pct"), on=KEYS, how="inner")
    out: dict[str, float] = {}
    for scope, frame in {"all": rows, "le365": rows.filter(pl.col(label) <= 365)}.items():
        for name, col in SOH_ESTIMATES.items():
            err = (frame[col] - frame["soh_pct"]).abs().drop_nulls().drop_nans()
            out[f"soh_estimate.{name}.mae_{scope}"] = float(err.mean()) if err.len() else float("nan")
    return out
