"""Training and evaluation in one call: splits, the CatBoost quantile model with conformal
calibration, baselines and the oracle on the same test strings, cross-validation,
leave-one-site-out, importances and SHAP. The report is flat and MLflow-ready.

Nothing is tuned on the test strings: early stopping watches the validation batteries, the
conformal offsets come from the calibration batteries, baselines are fitted on train rows.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from models.baselines import fit_baselines
from models.dataset import LABEL
from models.derived import derive_features
from models.evaluate import cross_validate, evaluation_metrics, leave_one_site_out
from models.features import KEYS
from models.metrics import regression_metrics
from models.oracle import oracle_rul, soh_estimation_metrics
from models.rul_model import (
    RulModel,
    default_categorical,
    fit_rul_model,
    model_features,
    monotone_constraints,
)
from models.splits import split_batteries

MAX_STUDY_RATE = 0.25


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    seed: int = _f(42, "Seed for splits, folds and CatBoost")
    iterations: int = _f(3000, "Most trees per quantile booster; early stopping stops sooner")
    learning_rate: float = _f(0.08, "CatBoost learning rate of the main fit")
    depth: int = _f(6, "Depth of CatBoost's symmetric trees")
    l2_leaf_reg: float = _f(3.0, "L2 regularisation of leaf values")
    early_stopping_rounds: int = _f(150, "Stop when validation loss has not improved this long")
    monotone: bool = _f(True, "Physics monotone constraints (features.DECREASING/INCREASING)")
    coverage: float = _f(0.8, "Nominal coverage of the P10-P90 interval after calibration")
    test_string_share: float = _f(0.2, "Share of each site's strings held out as the test set")
    calibration_battery_share: float = _f(0.2, "Share of non-test batteries for conformal")
    validation_battery_share: float = _f(0.15, "Share of non-test batteries for early stopping")
    cv_folds: int = _f(3, "GroupKFold folds (by battery) on the training batteries; 0 skips")
    loso: bool = _f(True, "Run leave-one-site-out (one refit per site)")
    study_iterations: int = _f(600, "Most trees per CV/LOSO refit (learning rate scaled up)")
    study_stride: int = _f(2, "CV/LOSO refits use every n-th weekly snapshot")
    shap_sample_rows: int = _f(2000, "Test rows explained in the SHAP sample")
    thread_count: int = _f(-1, "CatBoost threads (-1: all cores)")

    def booster_params(self) -> dict[str, Any]:
        """CatBoost parameters of the main fit (before the feature list is known)."""
        # CatBoost turns on model_shrink_rate (0.01) when monotone constraints are given, which
        # pulls every prediction toward zero: off here (measured: it biased P50 by -400 d for
        # RUL > 1,200 d). One categorical feature, no combinations: those can break monotony.
        return {"iterations": self.iterations, "learning_rate": self.learning_rate,
                "depth": self.depth, "l2_leaf_reg": self.l2_leaf_reg, "model_shrink_rate": 0.0,
                "max_ctr_complexity": 1, "random_seed": self.seed,
                "thread_count": self.thread_count}


@dataclass
class TrainingReport:
    """Everything a run produced; `metrics` is flat (`model.*`, `baseline.<name>.*`,
    `oracle.*`, `cv.*`, `loso.*`, `calibration.*`, `rows.*`, timings in `*.seconds`)."""

    model: RulModel
    metrics: dict[str, float]
    evaluation: pl.DataFrame
    splits: dict[str, list[str]]
    importance: pl.DataFrame
    shap_sample: pl.DataFrame
    params: dict[str, Any]


def train_and_evaluate(dataset: pl.DataFrame, truth: pl.DataFrame, config: TrainConfig,
                       dataset_without_maintenance: pl.DataFrame | None = None
                       ) -> TrainingReport:
    """Fit the model on the training batteries and evaluate it, the baselines and the oracle
    on held-out test strings. `truth` feeds only the oracle, never a feature or a label.
    `dataset_without_maintenance`: the same snapshots built from telemetry and batteries
    alone (`snapshot_features(telemetry, batteries, None)`, labelled), what `rul predict`
    sees without --maintenance: the model is fitted and calibrated for it too
    (`fit_rul_model`) and scored on its test rows (`model_telemetry_only.*`)."""
    t0 = time.perf_counter()
    splits = split_batteries(
        dataset, seed=config.seed, test_string_share=config.test_string_share,
        validation_battery_share=config.validation_battery_share,
        calibration_battery_share=config.calibration_battery_share)
    if not splits["test"]:
        raise ValueError("no test strings: hold-out needs a site with at least two strings")
    part = {name: dataset.filter(pl.col("battery_id").is_in(ids)) for name, ids in splits.items()}
    categorical = default_categorical()
    features = model_features(categorical)
    params = config.booster_params()
    if config.monotone:
        params["monotone_constraints"] = monotone_constraints(features)

    withheld = None if dataset_without_maintenance is None else {
        name: dataset_without_maintenance.filter(pl.col("battery_id").is_in(ids))
        for name, ids in splits.items()}
    t_fit = time.perf_counter()
    model = fit_rul_model(part["train"], part["validation"], part["calibration"], LABEL,
                          categorical, params | {"early_stopping_rounds":
                                                 config.early_stopping_rounds}, config.coverage,
                          withheld)
    fit_seconds = time.perf_counter() - t_fit

    test = part["test"]
    evaluation = evaluation_table(model, test, part["train"], truth, features, categorical)
    metrics = evaluation_metrics(evaluation, truth, config.seed)
    metrics |= _calibration_metrics(model, part["calibration"])
    metrics |= soh_estimation_metrics(derive_features(test, model.laws), truth, LABEL)
    if withheld is not None:
        metrics |= _telemetry_only_metrics(model, withheld["test"])
    best = _trees(model.booster, config)
    metrics |= {f"rows.{k}": float(v.height) for k, v in part.items()}
    metrics |= {f"batteries.{k}": float(len(v)) for k, v in splits.items()}
    metrics |= {"train.seconds": fit_seconds, "model.trees": float(best),
                "model.trees_p10": float(_trees(model.lower_booster, config)),
                "model.trees_p90": float(_trees(model.upper_booster, config))}

    study = _study_params(params, best, config)
    t_study = time.perf_counter()
    if config.cv_folds > 1:
        metrics |= cross_validate(part["train"], features, categorical, study,
                                  config.cv_folds, config.seed, config.study_stride)
    if config.loso and dataset["site_id"].n_unique() > 1:
        loso, _ = leave_one_site_out(dataset, features, categorical, study, config.study_stride)
        metrics |= loso
        if "cv.mae" in metrics:
            metrics["loso.ratio"] = loso["loso.mae"] / metrics["cv.mae"]
        metrics["loso.ratio_vs_test"] = loso["loso.mae"] / metrics["model.mae"]
    metrics["study.seconds"] = time.perf_counter() - t_study

    importance, shap_sample = _explain(model, test, config)
    metrics["total.seconds"] = time.perf_counter() - t0
    run_params = asdict(config) | {"features": features, "categorical": categorical,
                                   "trees": best, "study_trees": study["iterations"],
                                   "study_learning_rate": study["learning_rate"],
                                   "conformal": model.conformal, "laws": asdict(model.laws)}
    return TrainingReport(model, metrics, evaluation, splits, importance, shap_sample, run_params)


def _telemetry_only_metrics(model: RulModel, test: pl.DataFrame) -> dict[str, float]:
    """The test strings scored from telemetry and batteries alone."""
    scored = test.select(*KEYS, LABEL).join(model.predict(test), on=KEYS)
    return regression_metrics(*(scored[c].to_numpy() for c in (
        LABEL, "rul_p50_days", "rul_p10_days", "rul_p90_days")), prefix="model_telemetry_only")


def _trees(booster: Any, config: TrainConfig) -> int:
    best = booster.get_best_iteration()
    return int(best) + 1 if best is not None else config.iterations


def evaluation_table(model: RulModel, test: pl.DataFrame, train: pl.DataFrame,
                     truth: pl.DataFrame, features: list[str],
                     categorical: list[str]) -> pl.DataFrame:
    """One row per test snapshot, in the order of `test`: truth (label and, for the detection
    metrics, the true SoH), model quantiles, every baseline's and the oracle's prediction
    (baselines fitted on the training rows). Each prediction is paired with the keys of the
    frame it was computed from and joined on (battery_id, ts): a step that reorders rows
    cannot attach a prediction to another snapshot."""
    baselines = fit_baselines(derive_features(train, model.laws), features, categorical)
    inputs = derive_features(test, model.laws)
    attached = [
        model.predict(test),
        inputs.select(KEYS).with_columns(
            **{f"baseline_{b.name}_days": pl.Series(b.predict(inputs)) for b in baselines}),
        test.select(KEYS).with_columns(oracle_days=pl.Series(oracle_rul(test, truth))),
        truth.select(*KEYS, "soh_pct").unique(KEYS),
    ]
    table = test.select("battery_id", "site_id", "string_id", "ts", LABEL, "temp_mean_90d")
    for frame in attached:
        table = table.join(frame, on=KEYS, how="left", validate="1:1", maintain_order="left")
    return table


def _calibration_metrics(model: RulModel, calibration: pl.DataFrame) -> dict[str, float]:
    """Coverage on the calibration batteries before and after the conformal offsets."""
    y = calibration[LABEL].to_numpy()
    raw = replace(model, conformal={}).predict(calibration)
    cal = model.predict(calibration)

    def cov(p: pl.DataFrame) -> float:
        return float(np.mean((y >= p["rul_p10_days"].to_numpy())
                             & (y <= p["rul_p90_days"].to_numpy())))

    return {"calibration.coverage_raw": cov(raw), "calibration.coverage": cov(cal),
            **{f"conformal.{k}": v for k, v in model.conformal.items()}}


def _study_params(params: dict[str, Any], best: int, config: TrainConfig) -> dict[str, Any]:
    """CV/LOSO refits of the P50: no early stopping (no validation set there), at most
    `study_iterations` trees, learning rate scaled so trees x rate matches the main fit (up to
    MAX_STUDY_RATE, above which boosting turns erratic)."""
    trees = max(1, min(best, config.study_iterations))
    return params | {"iterations": trees,
                     "learning_rate": min(MAX_STUDY_RATE, config.learning_rate * best / trees)}


def _explain(model: RulModel, test: pl.DataFrame,
             config: TrainConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Feature importance (CatBoost's PredictionValuesChange and mean |SHAP| of the P50 in
    days over a seeded sample of test rows) and that sample's SHAP values."""
    n = max(1, min(config.shap_sample_rows, test.height))
    sample = test.sample(n, seed=config.seed).sort("battery_id", "ts")
    days, _ = model.p50_contributions(sample)
    shap = sample.select("battery_id", "ts").with_columns(
        **{f: pl.Series(days[:, i]) for i, f in enumerate(model.features)})
    importance = pl.DataFrame({
        "feature": model.features,
        "importance": np.asarray(model.booster.get_feature_importance(), dtype=float),
        "mean_abs_shap": np.abs(days).mean(axis=0),
    }).sort("importance", descending=True)
    return importance, shap
