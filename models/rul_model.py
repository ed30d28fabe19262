"""The RUL model: CatBoost quantiles (P10/P50/P90) of log(1 + RUL days), widened or narrowed
by split-conformal offsets fitted on held-out calibration batteries, with per-row drivers.

Why log(1 + RUL): the interval should scale with the horizon (a battery a month from end of
life is known to within days, one five years out to within a year), and on the log scale the
loss cares about short-RUL batteries as much as the far-off ones, which are the majority.
Quantiles survive a monotone transform, so expm1 of a log-quantile is the quantile in days.

`RulModel` is what the registry stores and `rul predict` calls; it applies the same derived
features as training, so the snapshot frame from `snapshot_features` is all it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from models.derived import DERIVED, derive_features
from models.features import CATEGORICAL, DECREASING, FEATURES, INCREASING, KEYS

QUANTILES = (0.1, 0.5, 0.9)
# Fewer calibration batteries at a site: its offsets would be noise, the fleet's are used
MIN_SITE_CALIBRATION_BATTERIES = 20
OUTPUT = ["rul_p10_days", "rul_p50_days", "rul_p90_days"]
# Missing means "not measured yet" here (no capacity test or deep discharge yet, so no
# projection either; no 90-180-day baseline), and CatBoost sorts missing below every value: a
# constraint would tie unmeasured batteries to the worst (or best) measured case, so these
# stay unconstrained.
UNCONSTRAINED = {"last_capacity_test_soh", "r_vs_baseline", "soh_projected_pct",
                 "rul_projected_days", "soh_projected_avg_pct", "rul_projected_avg_days"}


def model_features(categorical: list[str]) -> list[str]:
    """Feature columns the booster sees, categorical last."""
    return [*FEATURES, *DERIVED, *categorical]


def monotone_constraints(features: list[str]) -> list[int]:
    """-1 where physics says more means shorter life, +1 where it means longer, else 0."""
    return [0 if f in UNCONSTRAINED else -1 if f in DECREASING else 1 if f in INCREASING else 0
            for f in features]


def to_pool(frame: pl.DataFrame, features: list[str], categorical: list[str],
            label: np.ndarray | None = None) -> Any:
    """A CatBoost pool of the model's columns (derived features added, categories as text)."""
    from catboost import Pool

    df = derive_features(frame).with_columns(
        pl.col(categorical).cast(pl.String).fill_null("unknown")).select(features)
    return Pool(df.to_pandas(), label=label, cat_features=categorical)


@dataclass
class RulModel:
    """A fitted RUL model: picklable, and all the MLflow pyfunc wrapper needs.

    One single-quantile booster per quantile: CatBoost's MultiQuantile loss ignores monotone
    constraints (measured here; catboost issue #2938), single quantiles respect them."""

    booster: Any  # P50: catboost.CatBoostRegressor, Quantile:alpha=0.5 on log1p(days)
    features: list[str]
    categorical: list[str]
    conformal: dict[str, float]  # lower_log1p / upper_log1p: CQR offsets on the log1p scale
    lower_booster: Any  # P10, same features and constraints
    upper_booster: Any  # P90

    def log_quantiles(self, frame: pl.DataFrame) -> np.ndarray:
        """Raw (uncalibrated) P10/P50/P90 of log1p(RUL days), one row per frame row."""
        pool = to_pool(frame, self.features, self.categorical)
        return np.column_stack([np.asarray(b.predict(pool)) for b in (
            self.lower_booster, self.booster, self.upper_booster)])

    def predict(self, frame: pl.DataFrame) -> pl.DataFrame:
        """battery_id, ts and the conformal P10/P50/P90 in days (sorted per row, >= 0)."""
        q = self.log_quantiles(frame)
        mid = q[:, 1]
        lo = np.minimum(q[:, 0] - self._offsets(frame, "lower_log1p"), mid)
        hi = np.maximum(q[:, 2] + self._offsets(frame, "upper_log1p"), mid)
        days = np.clip(np.expm1(np.column_stack([lo, mid, hi])), 0.0, None)
        return frame.select(KEYS).with_columns(
            **{name: pl.Series(days[:, i]) for i, name in enumerate(OUTPUT)})

    def _offsets(self, frame: pl.DataFrame, bound: str) -> np.ndarray:
        """Each row's conformal offset: its site's where the site was calibrated, else the
        fleet's (a new site, or a model calibrated before per-site offsets existed)."""
        fleet = self.conformal.get(bound, 0.0)
        per_site = {k.removeprefix("site.").removesuffix(f".{bound}"): v
                    for k, v in self.conformal.items()
                    if k.startswith("site.") and k.endswith(f".{bound}")}
        if not per_site or "site_id" not in frame.columns:
            return np.full(frame.height, fleet)
        return frame["site_id"].cast(pl.String).replace_strict(
            per_site, default=fleet, return_dtype=pl.Float64).to_numpy()

    def p50_contributions(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """SHAP values of the P50 per row and feature, in days, and the fleet-average P50 in
        days. Log-scale SHAP values are scaled by the mean slope of expm1 between the average
        and the row's P50, so a row's contributions add up to its P50 minus the average."""
        shap = self.booster.get_feature_importance(
            to_pool(frame, self.features, self.categorical), type="ShapValues")
        base, values = shap[:, -1], shap[:, :-1]
        mid = base + values.sum(axis=1)
        step = mid - base
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(np.abs(step) > 1e-9, (np.expm1(mid) - np.expm1(base)) / step,
                             np.exp(mid))
        return values * slope[:, None], np.expm1(base)

    def drivers(self, frame: pl.DataFrame, k: int = 3) -> pl.DataFrame:
        """battery_id, ts and driver_1..driver_k: the features that shorten the P50 most, as
        "name=value (-N d)" (when nothing shortens it, the smallest lengthening ones)."""
        days, _ = self.p50_contributions(frame)
        values = derive_features(frame).select(self.features)
        order = np.argsort(days, axis=1, kind="stable")[:, :k]
        cols: dict[str, list[str]] = {f"driver_{j + 1}": [] for j in range(k)}
        for row, idx in enumerate(order):
            for j, f in enumerate(idx):
                name = self.features[f]
                cols[f"driver_{j + 1}"].append(
                    f"{name}={_fmt(values[name][row])} ({days[row, f]:+.0f} d)")
        return frame.select(KEYS).with_columns(
            **{c: pl.Series(v, dtype=pl.String) for c, v in cols.items()})


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return f"{value:.3g}" if isinstance(value, float | int) else str(value)


def fit_booster(train: pl.DataFrame, label: np.ndarray, features: list[str],
                categorical: list[str], params: dict[str, Any], alpha: float = 0.5,
                validation: tuple[pl.DataFrame, np.ndarray] | None = None) -> Any:
    """A CatBoost quantile regressor of log1p(label); early stopping watches `validation`."""
    from catboost import CatBoostRegressor

    booster = CatBoostRegressor(loss_function=f"Quantile:alpha={alpha}", verbose=0,
                                allow_writing_files=False, **params)
    eval_set = None
    if validation is not None:
        eval_set = to_pool(validation[0], features, categorical, np.log1p(validation[1]))
    booster.fit(to_pool(train, features, categorical, np.log1p(label)), eval_set=eval_set)
    return booster


def fit_rul_model(train: pl.DataFrame, validation: pl.DataFrame, calibration: pl.DataFrame,
                  label: str, categorical: list[str], params: dict[str, Any],
                  coverage: float) -> RulModel:
    """P10, P50 and P90 boosters on the training rows (early stopping on validation), then
    conformal offsets from the calibration rows."""
    features = model_features(categorical)
    fitted = [fit_booster(train, train[label].to_numpy(), features, categorical, params, alpha,
                          (validation, validation[label].to_numpy())) for alpha in QUANTILES]
    model = RulModel(fitted[1], features, categorical, {}, fitted[0], fitted[2])
    model.conformal = fit_conformal(model, calibration, calibration[label].to_numpy(), coverage)
    return model


def fit_conformal(model: RulModel, calibration: pl.DataFrame, label: np.ndarray,
                  coverage: float) -> dict[str, float]:
    """Asymmetric CQR offsets: each bound is moved (on the log1p scale) by the conformal
    quantile of how far calibration truths fall outside it, so each tail misses about
    (1 - coverage) / 2 of held-out batteries' rows. Fleet-wide offsets, plus per-site ones
    (Mondrian conformal) for sites with MIN_SITE_CALIBRATION_BATTERIES calibration batteries:
    climate and HVAC differ by site, and the interval must hold at every site, not only on
    average."""
    q = model.log_quantiles(calibration)
    y = np.log1p(label)
    out = {**_cqr(q, y, coverage), "nominal_coverage": float(coverage)}
    sites = calibration["site_id"].cast(pl.String).to_numpy()
    units = calibration.group_by("site_id").agg(pl.col("battery_id").n_unique())
    for site, n_units in units.iter_rows():
        if n_units >= MIN_SITE_CALIBRATION_BATTERIES:
            mask = sites == str(site)
            out |= {f"site.{site}.{k}": v for k, v in _cqr(q[mask], y[mask], coverage).items()}
    return out


def _cqr(q: np.ndarray, y: np.ndarray, coverage: float) -> dict[str, float]:
    n = len(y)
    level = min(1.0, np.ceil((n + 1) * (1 - (1 - coverage) / 2)) / n)
    return {"lower_log1p": float(np.quantile(q[:, 0] - y, level, method="higher")),
            "upper_log1p": float(np.quantile(y - q[:, 2], level, method="higher"))}


def default_categorical() -> list[str]:
    """The battery model only: site_id would let the model memorise sites (LOSO) and added
    nothing on validation batteries."""
    return [c for c in CATEGORICAL if c != "site_id"]
