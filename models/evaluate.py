"""Scoring the test snapshots, and the two out-of-sample studies: GroupKFold by battery on the
training part, and leave-one-site-out (train on the other sites, test on the held-out one).

The studies refit the booster with a fixed number of trees (the main fit's early-stopped count
or fewer, see TrainConfig) on every `stride`-th weekly snapshot, to keep a full run within
minutes on two cores; they are compared with each other (same settings), so their ratio says
how much worse the model does at an unseen site than on unseen batteries of known sites.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from models.dataset import LABEL
from models.detection import detection_metrics
from models.laws import Laws, fit_laws
from models.metrics import regression_metrics
from models.rul_model import fit_booster, to_pool
from models.splits import battery_folds
from models.uncertainty import string_bootstrap
from simulator.thresholds import load_thresholds

TEMP_BINS = {"le24": (-np.inf, 24.0), "24_26": (24.0, 26.0), "gt26": (26.0, np.inf)}


def evaluation_metrics(evaluation: pl.DataFrame, truth: pl.DataFrame,
                       seed: int) -> dict[str, float]:
    """Everything measured on one evaluation table (models.train.evaluation_table): error and
    coverage metrics of the model, baselines and oracle, detection of already-failed blocks
    (with the crossing days from the daily `truth`) and string-bootstrap intervals seeded by
    `seed`. The same call scores the test strings and a holdout fleet."""
    predictions = [c for c in evaluation.columns if c.startswith(("baseline_", "oracle_"))]
    return (report_metrics(evaluation, predictions)
            | end_mode_metrics(evaluation, truth, predictions)
            | detection_metrics(evaluation, truth, load_thresholds())
            | string_bootstrap(evaluation, [c for c in predictions if c.startswith("baseline_")],
                               seed))


# Lives ended by a sudden failure: an internal short or a runaway takes a cell at once, and no
# monitor sees it coming more than the ~2 weeks of ohmic jump before it (DOMAIN §3)
SUDDEN = ("internal_short", "thermal_runaway")  # simulator.schema.FAILURE_MODES


def end_mode_metrics(evaluation: pl.DataFrame, truth: pl.DataFrame,
                     predictions: list[str]) -> dict[str, float]:
    """The short-RUL MAEs split by how each battery's life ends (the truth's failure mode):
    `wear_out` (corrosion, dry-out, sulfation, defect) and `sudden` (short, runaway), with
    their row counts, for the model and every baseline/oracle column."""
    mode = evaluation.select("battery_id").join(
        truth.select("battery_id", "failure_mode").unique("battery_id"), on="battery_id",
        how="left", maintain_order="left")["failure_mode"]
    sudden = mode.is_in(SUDDEN).to_numpy()
    y = evaluation[LABEL].to_numpy()
    out: dict[str, float] = {}
    for col in ["rul_p50_days", *predictions]:
        prefix = "model" if col == "rul_p50_days" else col.removesuffix("_days").replace(
            "baseline_", "baseline.")
        for name, rows in (("wear_out", ~sudden), ("sudden", sudden)):
            m = regression_metrics(y[rows], evaluation[col].to_numpy()[rows])
            for key in ("mae_0_180", "mae_0_365", "n_0_180", "n_0_365"):
                out[f"{prefix}.{key}.{name}"] = m[f"model.{key}"]
    return out


def report_metrics(evaluation: pl.DataFrame, predictions: list[str]) -> dict[str, float]:
    """Model metrics (with coverage) overall, per site and per 90-day temperature band, plus
    the same headline metrics for each baseline/oracle column in `predictions`."""
    y = evaluation[LABEL].to_numpy()
    out = regression_metrics(y, evaluation["rul_p50_days"].to_numpy(),
                             evaluation["rul_p10_days"].to_numpy(),
                             evaluation["rul_p90_days"].to_numpy())
    for col in predictions:
        prefix = col.removesuffix("_days").replace("baseline_", "baseline.")
        out |= regression_metrics(y, evaluation[col].to_numpy(), prefix=prefix)
    for (site,), part in evaluation.group_by("site_id", maintain_order=True):
        m = regression_metrics(part[LABEL].to_numpy(), part["rul_p50_days"].to_numpy(),
                               part["rul_p10_days"].to_numpy(), part["rul_p90_days"].to_numpy())
        for name in ("mae", "mae_0_180", "mae_0_365", "mae_le365", "coverage", "late_share"):
            out[f"model.{name}.site.{site}"] = m[f"model.{name}"]
    out["model.p50_decline_per_day"] = _decline_per_day(evaluation)
    temp = evaluation["temp_mean_90d"].to_numpy()
    for name, (lo, hi) in TEMP_BINS.items():
        part = (temp > lo) & (temp <= hi)
        m = regression_metrics(y[part], evaluation["rul_p50_days"].to_numpy()[part])
        for key in ("mae", "mae_0_365", "mae_le365"):
            out[f"model.{key}.temp.{name}"] = m[f"model.{key}"]
    return out


def _decline_per_day(evaluation: pl.DataFrame) -> float:
    """Median over test batteries of how fast the P50 falls per calendar day while the true
    RUL is above 60 days (physics consistency, DOMAIN §6: about one day per day)."""
    days = pl.col("ts").dt.epoch("s") / 86_400.0
    slopes = (
        evaluation.filter(pl.col(LABEL) > 60)
        .group_by("battery_id")
        .agg(n=pl.len(), slope=pl.cov(days, "rul_p50_days") / days.var())
        .filter(pl.col("n") >= 8)
    )
    return float(-slopes["slope"].median()) if slopes.height else float("nan")


def thin(frame: pl.DataFrame, stride: int) -> pl.DataFrame:
    """Every `stride`-th weekly snapshot (the same weeks for every battery)."""
    if stride <= 1:
        return frame
    return frame.filter((pl.col("ts").dt.epoch("d") // 7) % stride == 0)


def _p50_days(booster: Any, frame: pl.DataFrame, features: list[str],
              categorical: list[str], laws: Laws) -> np.ndarray:
    q = np.asarray(booster.predict(to_pool(frame, features, categorical, laws)))
    return np.clip(np.expm1(q), 0.0, None)


def cross_validate(train: pl.DataFrame, features: list[str], categorical: list[str],
                   params: dict[str, Any], n_folds: int, seed: int,
                   stride: int) -> dict[str, float]:
    """GroupKFold by battery on the training rows; metrics of the pooled out-of-fold P50."""
    pred = np.full(train.height, np.nan)
    for held in battery_folds(train, n_folds, seed):
        mask = np.zeros(train.height, dtype=bool)
        mask[held] = True
        fit_rows = thin(train.filter(pl.Series(~mask)), stride)
        laws = fit_laws(fit_rows, LABEL)  # each refit fits its laws on its own rows
        booster = fit_booster(fit_rows, fit_rows[LABEL].to_numpy(), features, categorical,
                              params, laws=laws)
        pred[held] = _p50_days(booster, train[held], features, categorical, laws)
    out = regression_metrics(train[LABEL].to_numpy(), pred, prefix="cv")
    out["cv.folds"] = float(n_folds)
    return out


def leave_one_site_out(data: pl.DataFrame, features: list[str], categorical: list[str],
                       params: dict[str, Any], stride: int) -> tuple[dict[str, float],
                                                                     pl.DataFrame]:
    """Train on all other sites, predict every row of the held-out one; pooled and per-site
    metrics plus the predictions (battery_id, site_id, ts, truth, P50)."""
    parts = []
    for site in sorted(data["site_id"].unique()):
        rows = data.filter(pl.col("site_id") == site)
        fit_rows = thin(data.filter(pl.col("site_id") != site), stride)
        laws = fit_laws(fit_rows, LABEL)
        booster = fit_booster(fit_rows, fit_rows[LABEL].to_numpy(), features, categorical,
                              params, laws=laws)
        parts.append(rows.select("battery_id", "site_id", "ts", LABEL).with_columns(
            loso_p50_days=pl.Series(_p50_days(booster, rows, features, categorical, laws))))
    pred = pl.concat(parts)
    out = regression_metrics(pred[LABEL].to_numpy(), pred["loso_p50_days"].to_numpy(),
                             prefix="loso")
    for (site,), part in pred.group_by("site_id", maintain_order=True):
        m = regression_metrics(part[LABEL].to_numpy(), part["loso_p50_days"].to_numpy())
        for key in ("mae", "mae_0_365", "mae_le365"):
            out[f"loso.{key}.site.{site}"] = m[f"model.{key}"]
    return out, pred
