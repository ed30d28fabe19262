"""Detection metrics for blocks already past end of life.

A block whose true SoH is below 80 % has RUL 0 whatever the model says; the question there is
not "how many days" but "was it flagged, and how soon". The risk level `rul predict` shows is
critical when the P10 is below the critical threshold (simulator/thresholds.toml), so that is
the flag scored here: the share of failed snapshots flagged, the delay from the true crossing
of 80 % to the first critical flag, blocks never flagged, and false alarms on healthy blocks.
The true SoH is used to score only; it never reaches a feature.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from simulator.thresholds import Thresholds

EOL_SOH_PCT = 80.0  # IEEE 450 / 1188 end of life
HEALTHY_SOH_PCT = 90.0  # above this a critical flag is a false alarm
PREFIX = "detection"


def flag_critical(rul_p10_days: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """Thresholds.risk_level(p10) == "critical", vectorised (the same rule: P10 below the
    critical number of days)."""
    return np.asarray(rul_p10_days, dtype=float) < thresholds.rul.critical_days


def _share(flags: pl.Series) -> float:
    return float(flags.mean()) if flags.len() else float("nan")


def _quantile(days: np.ndarray, q: float) -> float:
    return float(np.quantile(days, q)) if days.size else float("nan")


def crossings(truth: pl.DataFrame, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    """battery_id and `crossed` (the first truth day with SoH below 80 %) of the blocks that
    were at or above 80 % on their first truth day and crossed within [start, end]."""
    return (
        truth.group_by("battery_id")
        .agg(first_soh=pl.col("soh_pct").sort_by("ts").first(),
             crossed=pl.col("ts").filter(pl.col("soh_pct") < EOL_SOH_PCT).min())
        .filter((pl.col("first_soh") >= EOL_SOH_PCT)
                & pl.col("crossed").is_between(pl.lit(start), pl.lit(end)))
        .select("battery_id", "crossed")
    )


def detection_metrics(evaluation: pl.DataFrame, truth: pl.DataFrame,
                      thresholds: Thresholds) -> dict[str, float]:
    """Flat `detection.*` metrics of the critical flag on `evaluation` (battery_id, ts,
    rul_p10_days and the true soh_pct of each snapshot), with the crossing days read from the
    daily `truth` rows (battery_id, ts, soh_pct) of the same batteries.

    The delay counts from the crossing to the block's first critical snapshot and is 0 when
    the flag came first (how long before is reported as the lead); a crossing block with no
    critical snapshot by the end of the scored period is counted as never flagged (censored),
    not given a made-up delay. Only crossings inside the scored period (first to last snapshot
    of the evaluation) count, so every crossing could have been seen."""
    ev = evaluation.select("battery_id", "ts", "soh_pct", critical=pl.Series(
        flag_critical(evaluation["rul_p10_days"].to_numpy(), thresholds)))
    below = ev.filter(pl.col("soh_pct") < EOL_SOH_PCT)["critical"]
    healthy = ev.filter(pl.col("soh_pct") > HEALTHY_SOH_PCT)["critical"]
    ids = ev["battery_id"].unique().implode()
    crossed = crossings(truth.filter(pl.col("battery_id").is_in(ids)),
                        ev["ts"].min(), ev["ts"].max())
    first_flag = ev.filter("critical").group_by("battery_id").agg(flagged=pl.col("ts").min())
    blocks = crossed.join(first_flag, on="battery_id", how="left").with_columns(
        days=(pl.col("flagged") - pl.col("crossed")).dt.total_seconds() / 86_400.0)
    signed = blocks["days"].drop_nulls().to_numpy()  # first flag minus crossing; < 0: early
    out = {
        "n_below80": float(below.len()),
        "flagged_share_below80": _share(below),
        "n_above90": float(healthy.len()),
        "false_alarm_share_above90": _share(healthy),
        "n_crossing": float(blocks.height),
        "never_flagged": float(blocks["flagged"].null_count()),
        "flagged_by_crossing": float(np.sum(signed <= 0)),
        "delay_days_median": _quantile(np.clip(signed, 0.0, None), 0.5),
        "delay_days_p90": _quantile(np.clip(signed, 0.0, None), 0.9),
        "lead_days_median": _quantile(-signed[signed <= 0], 0.5),
    }
    return {f"{PREFIX}.{k}": v for k, v in out.items()}
