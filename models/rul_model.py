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
from models.laws import PRIORS, Laws, fit_laws

QUANTILES = (0.1, 0.5, 0.9)
# Fewer calibration batteries at a site: its offsets would be noise, the fleet's are used;
# and fewer in the whole calibration set: offsets may widen the interval, never narrow it
# (eight batteries that all sat well inside the raw P10 prove little about the ninth)
MIN_CALIBRATION_BATTERIES = 20
# Conformal groups by what the inputs hold: a capacity test (maintenance records given) pins
# the state of health, telemetry alone leaves it to ohmics and discharges, and one interval
# width for both was too narrow without (holdout fleet, rul predict at one date: coverage 0.62
# without maintenance records, 0.75 with; issue 7). The group is read from the features, so
# serving knows it without being told.
TESTED, UNTESTED = "tested", "untested"
TEST_FEATURE = "last_capacity_test_soh"
OUTPUT = ["rul_p10_days", "rul_p50_days", "rul_p90_days"]
# Missing means "not measured yet" here (no capacity test or deep discharge yet, so no
# projection either; no 90-180-day baseline), and CatBoost sorts missing below every value: a
# constraint would tie unmeasured batteries to the worst (or best) measured case, so these
# stay unconstrained.
UNCONSTRAINED = {"last_capacity_test_soh", "r_vs_baseline", "soh_projected_pct",
                 "rul_projected_days", "soh_projected_avg_pct", "rul_projected_avg_days"}
# Besides features.DECREASING/INCREASING: for one unit, more heat (ageing doubles per
# ~8.5-10 degC, DOMAIN §3), a higher or faster-rising resistance (wear), more float current
# (heat, dry-out) never lengthen life; more or faster-rising conductance never shortens it.
# Unconstrained, the boosters read them both ways: the test champion's P50 moved by x0.63 to
# x1.35 for a crafted 7 degC hotter 120-day history and by x0.70 to x1.34 for a 10 % faster
# resistance rise (x0.52-1.00 and x0.63-0.99 constrained; tests/test_counterfactual.py).
PHYSICS_DECREASING = ("temp_mean_", "temp_max_", "hours_above_", "arrhenius_hours_",
                      "site_temp_", "hotspot_", "r_slope_", "r_rise_per_year_", "r_now",
                      "r_30d", "float_current_")
PHYSICS_INCREASING = ("g_now", "g_slope_")


def model_features(categorical: list[str]) -> list[str]:
    """Feature columns the booster sees, categorical last."""
    return [*FEATURES, *DERIVED, *categorical]


def monotone_constraints(features: list[str]) -> list[int]:
    """-1 where physics says more means shorter life, +1 where it means longer, else 0."""
    decreasing = {*DECREASING, *(f for f in features if f.startswith(PHYSICS_DECREASING))}
    increasing = {*INCREASING, *(f for f in features if f.startswith(PHYSICS_INCREASING))}
    return [0 if f in UNCONSTRAINED else -1 if f in decreasing else 1 if f in increasing else 0
            for f in features]


def to_pool(frame: pl.DataFrame, features: list[str], categorical: list[str], laws: Laws,
            label: np.ndarray | None = None) -> Any:
    """A CatBoost pool of the model's columns (derived features added with the fitted laws,
    categories as text)."""
    from catboost import Pool

    df = derive_features(frame, laws).with_columns(
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
    laws: Laws = PRIORS  # fitted on the training rows (models.laws); priors if built by hand

    def log_quantiles(self, frame: pl.DataFrame) -> np.ndarray:
        """Raw (uncalibrated) P10/P50/P90 of log1p(RUL days), one row per frame row."""
        pool = to_pool(frame, self.features, self.categorical, self.laws)
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
        """Each row's conformal offset, the most specific one calibrated: its site's and
        data group's (`data_group`), its group's fleet-wide, its site's, the fleet's (a new
        site, or a model calibrated before groups or sites had offsets)."""
        table = {k: float(v) for k, v in self.conformal.items()}
        site = (frame["site_id"].cast(pl.String) if "site_id" in frame.columns
                else pl.Series([None] * frame.height, dtype=pl.String))
        keys = pl.DataFrame({"site": site, "group": data_group(frame)})

        def look(*parts: str | pl.Expr) -> pl.Expr:
            key = pl.concat_str([pl.lit(p) if isinstance(p, str) else p for p in parts])
            return key.replace_strict(table, default=None, return_dtype=pl.Float64)

        site_, group = pl.col("site"), pl.col("group")
        offsets = keys.select(pl.coalesce(
            look("site.", site_, ".", group, f".{bound}"), look("group.", group, f".{bound}"),
            look("site.", site_, f".{bound}"), pl.lit(table.get(bound, 0.0))))
        return offsets.to_series().to_numpy()

    def p50_contributions(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """SHAP values of the P50 per row and feature, in days, and the fleet-average P50 in
        days. Log-scale SHAP values are scaled by the mean slope of expm1 between the average
        and the row's P50, so a row's contributions add up to its P50 minus the average."""
        shap = self.booster.get_feature_importance(
            to_pool(frame, self.features, self.categorical, self.laws), type="ShapValues")
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
        values = derive_features(frame, self.laws).select(self.features)
        order = np.argsort(days, axis=1, kind="stable")[:, :k]
        cols: dict[str, list[str]] = {f"driver_{j + 1}": [] for j in range(k)}
        for row, idx in enumerate(order):
            for j, f in enumerate(idx):
                name = self.features[f]
                cols[f"driver_{j + 1}"].append(
                    f"{name}={_fmt(values[name][row])} ({days[row, f]:+.0f} d)")
        return frame.select(KEYS).with_columns(
            **{c: pl.Series(v, dtype=pl.String) for c, v in cols.items()})


def data_group(frame: pl.DataFrame) -> pl.Series:
    """TESTED where the row carries a capacity test, else UNTESTED (telemetry only, or no test
    in the records yet): the conformal group of each row."""
    tested = (frame[TEST_FEATURE].is_not_null() if TEST_FEATURE in frame.columns
              else pl.repeat(False, frame.height, eager=True))
    return pl.Series("group", np.where(tested.to_numpy(), TESTED, UNTESTED), dtype=pl.String)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return f"{value:.3g}" if isinstance(value, float | int) else str(value)


def fit_booster(train: pl.DataFrame, label: np.ndarray, features: list[str],
                categorical: list[str], params: dict[str, Any], alpha: float = 0.5,
                validation: tuple[pl.DataFrame, np.ndarray] | None = None, *,
                laws: Laws) -> Any:
    """A CatBoost quantile regressor of log1p(label); early stopping watches `validation`;
    derived features with `laws` (fitted on the same training rows)."""
    from catboost import CatBoostRegressor

    booster = CatBoostRegressor(loss_function=f"Quantile:alpha={alpha}", verbose=0,
                                allow_writing_files=False, **params)
    eval_set = None
    if validation is not None:
        eval_set = to_pool(validation[0], features, categorical, laws,
                           np.log1p(validation[1]))
    booster.fit(to_pool(train, features, categorical, laws, np.log1p(label)), eval_set=eval_set)
    return booster


def fit_rul_model(train: pl.DataFrame, validation: pl.DataFrame, calibration: pl.DataFrame,
                  label: str, categorical: list[str], params: dict[str, Any],
                  coverage: float,
                  telemetry_only: dict[str, pl.DataFrame] | None = None) -> RulModel:
    """The laws, then P10, P50 and P90 boosters on the training rows (early stopping on
    validation), then conformal offsets from the calibration rows. `telemetry_only` holds,
    by split name, the same batteries' rows built without maintenance records: the training
    and calibration rows a capacity test changed are added without it
    (`with_tests_withheld`), so the boosters learn what telemetry alone tells and the untested
    offsets hold for the inputs `rul predict` gets without --maintenance. Early stopping
    watches the validation rows as recorded: with their telemetry-only copies too, it stopped
    sooner and the MAE on true RUL <= 365 d was 5-7 d worse (development test strings and a
    holdout fleet, measured)."""
    features = model_features(categorical)
    laws = fit_laws(train, label)
    withheld = telemetry_only or {}
    train = with_tests_withheld(train, withheld.get("train"))
    calibration = with_tests_withheld(calibration, withheld.get("calibration"))
    fitted = [fit_booster(train, train[label].to_numpy(), features, categorical, params, alpha,
                          (validation, validation[label].to_numpy()), laws=laws)
              for alpha in QUANTILES]
    model = RulModel(fitted[1], features, categorical, {}, fitted[0], fitted[2], laws)
    model.conformal = fit_conformal(model, calibration, calibration[label].to_numpy(), coverage)
    return model


def with_tests_withheld(rows: pl.DataFrame, withheld: pl.DataFrame | None) -> pl.DataFrame:
    """`rows` plus the rows of `withheld` (the same snapshots built without maintenance
    records) whose counterpart in `rows` carries a capacity test; the others are identical."""
    if withheld is None:
        return rows
    tested = rows.filter(pl.col(TEST_FEATURE).is_not_null()).select(KEYS)
    return pl.concat([rows, withheld.join(tested, on=KEYS, how="semi")],
                     how="diagonal_relaxed")


def fit_conformal(model: RulModel, calibration: pl.DataFrame, label: np.ndarray,
                  coverage: float) -> dict[str, float]:
    """Asymmetric CQR offsets: each bound is moved (on the log1p scale) by the conformal
    quantile of how far calibration truths fall outside it, so each tail misses about
    (1 - coverage) / 2 of held-out batteries. Mondrian conformal: offsets per data group
    (`data_group`: with and without a capacity test), and per site and group where the site
    has MIN_CALIBRATION_BATTERIES calibration batteries in it, because climate and HVAC
    differ by site and the interval must hold at every site and for whatever inputs are
    given, not only on average; pooled fleet-wide ones for anything else."""
    q = model.log_quantiles(calibration)
    y = np.log1p(label)
    keyed = calibration.select("battery_id", site=pl.col("site_id").cast(pl.String),
                               group=data_group(calibration))
    every = np.ones(len(y), dtype=bool)
    out = {**_cqr(q, y, keyed["battery_id"], every, coverage),
           "nominal_coverage": float(coverage)}
    for group in keyed["group"].unique().sort():
        mask = (keyed["group"] == group).to_numpy()
        out |= {f"group.{group}.{k}": v
                for k, v in _cqr(q, y, keyed["battery_id"], mask, coverage).items()}
    units = keyed.group_by("site", "group").agg(pl.col("battery_id").n_unique())
    for site, group, n_units in units.sort("site", "group").iter_rows():
        if n_units >= MIN_CALIBRATION_BATTERIES:
            mask = ((keyed["site"] == site) & (keyed["group"] == group)).to_numpy()
            out |= {f"site.{site}.{group}.{k}": v
                    for k, v in _cqr(q, y, keyed["battery_id"], mask, coverage).items()}
    return out


def _cqr(q: np.ndarray, y: np.ndarray, battery: pl.Series, mask: np.ndarray,
         coverage: float) -> dict[str, float]:
    """The offsets from the rows in `mask`, each battery weighing one: its weekly snapshots
    are near copies, so the sample is its batteries, not its rows, and `rul predict` scores
    each battery once. The level is the nominal one: the finite-sample (n + 1) / n of ~35
    batteries a site would push coverage to ~0.85, out of the promotion band (metrics.py);
    with under MIN_CALIBRATION_BATTERIES batteries an offset only widens."""
    ids = battery.filter(pl.Series(mask))
    weight = 1.0 / ids.to_frame().select(pl.len().over("battery_id")).to_series().to_numpy()
    level = 1 - (1 - coverage) / 2
    floor = -np.inf if ids.n_unique() >= MIN_CALIBRATION_BATTERIES else 0.0
    return {"lower_log1p": max(floor, _weighted_quantile(q[mask, 0] - y[mask], weight, level)),
            "upper_log1p": max(floor, _weighted_quantile(y[mask] - q[mask, 2], weight, level))}


def _weighted_quantile(values: np.ndarray, weight: np.ndarray, level: float) -> float:
    """The smallest value whose cumulative weight reaches `level` of the total."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weight[order])
    return float(values[order][min(np.searchsorted(cum, level * cum[-1] * (1 - 1e-12)),
                                   len(values) - 1)])


def default_categorical() -> list[str]:
    """The battery model only: site_id would let the model memorise sites (LOSO) and added
    nothing on validation batteries."""
    return [c for c in CATEGORICAL if c != "site_id"]
