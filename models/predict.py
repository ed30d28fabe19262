"""Scoring a set of batteries at one moment: the functions behind `rul predict`, for every
consumer that scores (notebooks, scoring assets) to reuse.

Features come from `snapshot_features(..., as_of=...)`, the code path the training snapshots
use, so a prediction sees exactly what a training row saw: whole UTC days before `as_of`.
A battery the model cannot judge honestly gets a status and NULL numbers, never a guess.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from models.features import snapshot_features
from simulator.schema import TS
from simulator.thresholds import Thresholds, load_thresholds

OK, INSUFFICIENT, STALE = "ok", "insufficient_data", "stale_data"
# No reading in the last week before as_of: the features would describe an older battery.
MAX_SILENCE = dt.timedelta(days=7)
# A measurement missing for most of a battery's history or of its last month, or one value
# throughout that month (a stuck sensor: the simulator's and the field's stick for hours),
# would be scored from what is not there: rolling means and hours over the rows that exist
# describe a cooler, younger or healthier battery than the real one.
RECENT = dt.timedelta(days=30)
MIN_PRESENT_SHARE = 0.5
PER_ROW = ("voltage_v", "current_a", "temperature_c")
# One ohmic reading a day is complete, and the last month's set today's resistance; counted
# over that month only (distinct days over a whole history cost 2.5 s on 34 M rows, measured)
PER_DAY = "resistance_mohm"
NEVER_CONSTANT = ("voltage_v", "temperature_c", "resistance_mohm")  # see models.inputs
QUANTILES = ["rul_p10_days", "rul_p50_days", "rul_p90_days"]
DRIVERS = ["driver_1", "driver_2", "driver_3"]
OUTPUT = {
    "battery_id": pl.String, **dict.fromkeys(QUANTILES, pl.Float64),
    "risk_level": pl.String, **dict.fromkeys(DRIVERS, pl.String), "status": pl.String,
}


def default_as_of(telemetry: pl.DataFrame | pl.LazyFrame) -> dt.datetime:
    """Midnight UTC after the last reading: training snapshots are taken at 00:00 UTC from
    whole days, so this scores the newest complete day the way the model was trained."""
    last = telemetry.lazy().select(pl.col("ts").dt.truncate("1d").max()).collect().item()
    return last + dt.timedelta(days=1)


def predict_batteries(
    telemetry: pl.DataFrame | pl.LazyFrame,
    batteries: pl.DataFrame,
    maintenance: pl.DataFrame | None,
    model: Any,
    as_of: dt.datetime | None = None,
    thresholds: Thresholds | None = None,
) -> pl.DataFrame:
    """One row per battery in service at `as_of` (a UTC midnight; default: `default_as_of`)
    with RUL quantiles, the risk level of the P10 bound and the top drivers; `status` says
    why a row has no numbers."""
    return score_frame(scoring_frame(telemetry, batteries, maintenance, as_of), model,
                       thresholds)


def scoring_frame(
    telemetry: pl.DataFrame | pl.LazyFrame,
    batteries: pl.DataFrame,
    maintenance: pl.DataFrame | None,
    as_of: dt.datetime | None = None,
) -> pl.DataFrame:
    """The snapshot features of every battery in service at `as_of`, with its `status`."""
    as_of = as_of or default_as_of(telemetry)
    lazy = telemetry.lazy().filter(pl.col("ts") < as_of)
    active = in_service(batteries, as_of)
    feats = snapshot_features(lazy, active, maintenance, as_of=as_of)
    quality = measurement_quality(lazy, as_of)
    silent = pl.col("last_ts") < pl.lit(as_of - MAX_SILENCE).cast(TS)
    usable = pl.col("sufficient_history").fill_null(False) & pl.col("measured").fill_null(False)
    return (
        active.select("battery_id")
        .join(feats, on="battery_id", how="left")
        .join(quality, on="battery_id", how="left")
        .with_columns(status=pl.when(silent).then(pl.lit(STALE))
                      .when(usable).then(pl.lit(OK))
                      .otherwise(pl.lit(INSUFFICIENT)))
        .drop("last_ts", "measured")
        .sort("battery_id")
    )


def measurement_quality(telemetry: pl.LazyFrame, as_of: dt.datetime) -> pl.DataFrame:
    """Per battery: its last reading, and whether every measurement is present often enough
    (MIN_PRESENT_SHARE of its rows over its whole history and over the RECENT window; the
    daily ohmic reading on that share of the RECENT window's days) and not one value
    throughout the RECENT window."""
    whole = telemetry.group_by("battery_id").agg(
        last_ts=pl.col("ts").max(),
        history_ok=pl.all_horizontal(pl.col(c).count() >= MIN_PRESENT_SHARE * pl.len()
                                     for c in PER_ROW))
    day = pl.col("ts").dt.truncate("1d")
    month = telemetry.filter(pl.col("ts") >= pl.lit(as_of - RECENT).cast(TS)).group_by(
        "battery_id").agg(recent_ok=pl.all_horizontal(
            *[pl.col(c).count() >= MIN_PRESENT_SHARE * pl.len() for c in PER_ROW],
            day.filter(pl.col(PER_DAY).is_not_null()).n_unique()
            >= MIN_PRESENT_SHARE * day.n_unique(),
            *[pl.col(c).max() > pl.col(c).min() for c in NEVER_CONSTANT]))
    return whole.join(month, on="battery_id", how="left").select(
        "battery_id", "last_ts", measured=pl.col("history_ok") & pl.col("recent_ok")).collect()


def score_frame(frame: pl.DataFrame, model: Any,
                thresholds: Thresholds | None = None) -> pl.DataFrame:
    """Score the rows of a `scoring_frame` whose status is ok; `model.predict(features)` must
    return the quantile and driver columns row by row (the registered model does)."""
    thresholds = thresholds or load_thresholds()
    scorable = frame.filter(pl.col("status") == OK).drop("status")
    scored = _score(model, scorable) if scorable.height else pl.DataFrame(
        schema={k: OUTPUT[k] for k in ("battery_id", *QUANTILES, *DRIVERS)})
    out = frame.select("battery_id", "status").join(scored, on="battery_id", how="left",
                                                    maintain_order="left")
    risk = [None if p is None else thresholds.risk_level(p) for p in out["rul_p10_days"]]
    return out.with_columns(risk_level=pl.Series(risk, dtype=pl.String)).select(
        [pl.col(c).cast(t) for c, t in OUTPUT.items()]).sort("battery_id")


def in_service(batteries: pl.DataFrame, as_of: dt.datetime) -> pl.DataFrame:
    """Batteries installed before `as_of` and not removed by then: a replaced unit's last
    readings would otherwise be scored, and skew its site's mean temperature feature."""
    day = as_of.date()
    keep = pl.col("install_date") < day
    if "removed_date" in batteries.columns:
        keep &= pl.col("removed_date").is_null() | (pl.col("removed_date") >= day)
    return batteries.filter(keep)


def _score(model: Any, features: pl.DataFrame) -> pl.DataFrame:
    """The model's quantiles and drivers, row-aligned with the features (the model sorts the
    quantiles per row and clips them at zero)."""
    result = model.predict(features)
    return pl.concat([features.select("battery_id"), result.select(QUANTILES).cast(pl.Float64),
                      result.select(DRIVERS).cast(pl.String)], how="horizontal")
