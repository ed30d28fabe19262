"""Each battery's own baselines, from its history: the resistance rule trends a unit against
itself (DOMAIN §3), and the runaway rule compares float current with that unit's normal."""

from __future__ import annotations

import datetime as dt

import polars as pl

# Resistance: the first month on record. DOMAIN §3 takes the baseline 90-180 days after
# install, once the unit has settled; the history usually starts years after commissioning, so
# its first month is the earliest settled state we see. Medians shrug off bad-contact outliers.
RESISTANCE_WINDOW = dt.timedelta(days=30)
# Float current: the last month, the unit's present normal (it drifts with age and season).
CURRENT_WINDOW = dt.timedelta(days=30)
BASELINES = {
    "battery_id": pl.String,
    "resistance_baseline_mohm": pl.Float64,
    "float_current_baseline_a": pl.Float64,
}


def baselines_from_history(telemetry: pl.LazyFrame | pl.DataFrame,
                           resistance_window: dt.timedelta = RESISTANCE_WINDOW,
                           current_window: dt.timedelta = CURRENT_WINDOW) -> pl.DataFrame:
    """Per battery: median float-mode resistance over its first `resistance_window` on record
    and median float-mode current over its last `current_window` (columns of `BASELINES`).
    Float rows only: ohmic values and current depend on the charge state (DOMAIN §8)."""
    on_float = (telemetry.lazy().filter(pl.col("mode") == "float")
                .select("battery_id", "ts", "resistance_mohm", "current_a"))
    first, last = pl.col("ts").min().over("battery_id"), pl.col("ts").max().over("battery_id")
    resistance = (on_float.filter(pl.col("ts") < first + resistance_window)
                  .group_by("battery_id")
                  .agg(resistance_baseline_mohm=pl.col("resistance_mohm").median()))
    current = (on_float.filter(pl.col("ts") > last - current_window)
               .group_by("battery_id")
               .agg(float_current_baseline_a=pl.col("current_a").median()))
    return (resistance.join(current, on="battery_id", how="full", coalesce=True)
            .select([pl.col(c).cast(t) for c, t in BASELINES.items()])
            .sort("battery_id")
            .collect())
