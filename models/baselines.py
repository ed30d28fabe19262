"""Baselines the model must beat on the same split (DOMAIN §6), each fitted on training rows
only: published battery benchmarks often see tree ensembles lose to simple rules or linear
models with good features, so they are reported side by side.

- mean: the training mean RUL for everyone;
- calendar: design life times a field factor, minus age;
- arrhenius: physics only; design life shortened by the battery's own mean Arrhenius factor;
- trend: the battery's resistance rise over the last year extrapolated to its end-of-life level;
- linear: ridge regression on the model's own features (imputed, scaled, one-hot sites).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from models.dataset import LABEL
from simulator import physics as ph

DAYS_PER_YEAR = 365.25
EOL_WINDOW_DAYS = 14.0  # rows this close to end of life define the resistance threshold
RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0)


@dataclass(frozen=True)
class Baseline:
    name: str
    predict: Callable[[pl.DataFrame], np.ndarray]  # days, one per row, >= 0


def fit_baselines(train: pl.DataFrame, features: list[str], categorical: list[str]) -> list[Baseline]:
    """Every baseline fitted on `train` (rows with the label)."""
    y = train[LABEL].to_numpy()
    cap = float(y.max())
    return [_mean(y), _calendar(train, y, cap), _arrhenius(train, y, cap), _trend(train, y),
            _linear(train, y, features, categorical, cap)]


def _mean(y: np.ndarray) -> Baseline:
    mean = float(y.mean())
    return Baseline("mean", lambda f: np.full(f.height, mean))


def _design_days(f: pl.DataFrame) -> np.ndarray:
    return f["design_life_years"].to_numpy() * DAYS_PER_YEAR


def _calendar(train: pl.DataFrame, y: np.ndarray, cap: float) -> Baseline:
    """RUL = k x design life - age; k (UPS batteries rarely reach their label) is the median
    of (true RUL + age) / design life on the training rows."""
    k = float(np.median((y + train["age_days"].to_numpy()) / _design_days(train)))
    return Baseline("calendar", lambda f: np.clip(
        k * _design_days(f) - f["age_days"].to_numpy(), 0.0, cap))


def _mean_arrhenius(f: pl.DataFrame) -> np.ndarray:
    """Ageing speed at the mean battery temperature over the observed history."""
    return ph.arrhenius_factor(f["temp_mean_life"].to_numpy(), ph.PhysicsParams())


def _arrhenius(train: pl.DataFrame, y: np.ndarray, cap: float) -> Baseline:
    """Field life = k x design life / Arrhenius factor; life used so far = age / field life.
    RUL = field life - age; k is fitted on training rows (median)."""
    af = _mean_arrhenius(train)
    k = float(np.median((y + train["age_days"].to_numpy()) * af / _design_days(train)))
    return Baseline("arrhenius", lambda f: np.clip(
        k * _design_days(f) / _mean_arrhenius(f) - f["age_days"].to_numpy(), 0.0, cap))


def _resistance_rise(f: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Resistance over the model's nominal value and its rise per day in the same unit, over
    the longest window the snapshot has (a year of daily readings where available)."""
    ratio = f["r_vs_nominal"].to_numpy().astype(float)
    per_day = f["r_slope_365d"].fill_null(f["r_slope_90d"]).to_numpy().astype(float)
    return ratio, per_day * ratio / f["r_now"].to_numpy()


def _trend(train: pl.DataFrame, y: np.ndarray) -> Baseline:
    """Days until resistance over nominal reaches the level seen at end of life (the training
    median within two weeks of it) at the current rate; a battery whose resistance is not
    rising gets the training 95th-percentile RUL, which also caps the extrapolation."""
    ratio, _ = _resistance_rise(train)
    near_eol = y <= EOL_WINDOW_DAYS
    threshold = float(np.nanmedian(ratio[near_eol])) if near_eol.any() else 1.45
    long = float(np.quantile(y, 0.95))

    def predict(f: pl.DataFrame) -> np.ndarray:
        r, slope = _resistance_rise(f)
        with np.errstate(divide="ignore", invalid="ignore"):
            days = np.where(slope > 0, (threshold - r) / slope, long)
        return np.clip(np.nan_to_num(days, nan=long), 0.0, long)

    return Baseline("trend", predict)


def _linear(train: pl.DataFrame, y: np.ndarray, features: list[str], categorical: list[str],
            cap: float) -> Baseline:
    """Ridge on the same features: median imputation with missing flags, standard scaling,
    one-hot categories; alpha by efficient leave-one-out on the training rows."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in features if c not in categorical]
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True,
                                            keep_empty_features=True), StandardScaler()),
         numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
    ])
    model = make_pipeline(prep, RidgeCV(alphas=RIDGE_ALPHAS))
    model.fit(train.select(features).to_pandas(), y)
    return Baseline("linear", lambda f: np.clip(
        model.predict(f.select(features).to_pandas()), 0.0, cap))
