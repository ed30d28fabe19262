"""The laws the model-side physics rests on, fitted on the training batteries or read from the
battery datasheet: never the simulator's own constants, which a field deployment does not know.

Fitted inside training, on the training rows only (`fit_laws`), and stored in the `RulModel`,
so scoring and `rul predict` derive their inputs with the same values:

- resistance gain g of R = R0 (1 + g f): from pairs of consecutive capacity tests of one unit
  and its resistance at each (the unit's own R0 cancels);
- deep-discharge reading: SoH from the Ah drawn per volt of voltage drop, calibrated against
  the capacity test the same discharge was (a monitor does not know the discharge curve);
- healthy float current per Ah against temperature and float-voltage deviation: from the
  youngest training batteries' float readings;
- fade shape a of f = a u + (1 - a) u^2: the one that makes the resistance projection match
  the training batteries' lives best (2-3 tests per unit cannot show curvature on their own).

A law with too little training data to fit (under MIN_FIT_ROWS observations, e.g. a fleet
observed for less than a year) keeps its datasheet-level prior, the `Laws` defaults.

From the datasheet (fleet config, `simulator.config.BatteryModel`), used as they are:
design life, new resistance, life halving per degC, the ohmic reading's temperature
coefficient and the Peukert exponent (`datasheet`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from models.projection import LOSS_AT_EOL, new_resistance_avg, project_health
from simulator.config import load_fleet

MIN_FIT_ROWS = 20  # fewer observations: a robust line is noise, the prior is kept
HUBER_K = 1.345  # Huber's tuning constant: 95 % efficiency under normal errors (Huber 1981)
YOUNG_SHARE = 0.25  # healthy float current: the youngest quarter of the training rows
FADE_GRID = np.linspace(0.05, 1.0, 20)  # a = 0 would make the curve flat at u = 0
MEASUREMENT_MEANS = ["meas_inv_r", "meas_test_soh_inv_r", "meas_dis_inv_r",
                     "meas_dis_x_inv_r", "meas_dis_x2_inv_r"]


@dataclass(frozen=True)
class Laws:
    """Fitted laws; the defaults are the datasheet-level priors a law keeps without data."""

    # IEEE 1188 practice: replace at about +40-50 % over baseline, near 80 % (DOMAIN §3)
    resistance_gain: float = 0.45
    fade_linear_share: float = 1.0  # without data, no acceleration is assumed: linear fade
    # float current ~0.5-1 mA/Ah at 25 degC, doubling per ~10 degC and per ~0.1 V/cell (x 6)
    # of over-voltage (DOMAIN §8, datasheets)
    float_log2_ma_per_ah: float = math.log2(0.75)
    float_log2_per_c: float = 1.0 / 10.0
    float_log2_per_v: float = 1.0 / 0.6
    # SoH = c0 + c1 x + c2 x^2 of the Ah share drawn per volt x; prior: linear OCV from
    # 2.15 to 1.95 V/cell, 1.2 V per block over the whole charge (typical AGM OCV table)
    discharge_soh_coefs: tuple[float, float, float] = (0.0, 1.2, 0.0)

    def healthy_float_current(self, rated_ah: np.ndarray, temp_c: np.ndarray,
                              float_dev_v: np.ndarray) -> np.ndarray:
        """Float current (A) of a healthy block at this temperature and float deviation (per
        Ah at the datasheet's 25 degC rating temperature)."""
        log2_ma = (self.float_log2_ma_per_ah + self.float_log2_per_c * (temp_c - 25.0)
                   + self.float_log2_per_v * float_dev_v)
        return 1e-3 * rated_ah * np.exp2(log2_ma)

    def discharge_soh(self, ah_per_v: np.ndarray) -> np.ndarray:
        """SoH (fraction of rating) that a deep discharge's Ah drawn per volt reveals."""
        c0, c1, c2 = self.discharge_soh_coefs
        return c0 + c1 * ah_per_v + c2 * ah_per_v**2

    def new_resistance_avg(self, frame: pl.DataFrame) -> np.ndarray:
        """The unit's new resistance from the last year's capacity tests and deep discharges
        (models.capacity keeps the means the discharge calibration needs)."""
        inv_r, test, dis, dis_x, dis_x2 = (column(frame, c) for c in MEASUREMENT_MEANS)
        c0, c1, c2 = self.discharge_soh_coefs
        soh_inv_r = test + c0 * dis + c1 * dis_x + c2 * dis_x2
        return new_resistance_avg(inv_r, soh_inv_r, self.resistance_gain)


PRIORS = Laws()


def fit_laws(train: pl.DataFrame, label: str) -> Laws:
    """Every law fitted on the training rows (weekly snapshots with their label)."""
    laws = Laws(resistance_gain=_fit_resistance_gain(train),
                discharge_soh_coefs=_fit_discharge_soh(train),
                **_fit_float_current(train))
    return replace(laws, fade_linear_share=_fit_fade_shape(train, label, laws))


def huber(x: np.ndarray, y: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Huber M-estimate of b in y ~ x b (IRLS, residual scale by the MAD): ohmic outliers,
    failing units and test errors must not drag the law."""
    w = np.ones(len(y))
    b = np.zeros(x.shape[1])
    for _ in range(iterations):
        sw = np.sqrt(w)
        b = np.linalg.lstsq(x * sw[:, None], y * sw, rcond=None)[0]
        r = y - x @ b
        scale = 1.4826 * np.median(np.abs(r - np.median(r))) + 1e-12
        w = np.minimum(1.0, HUBER_K * scale / np.maximum(np.abs(r), 1e-300))
    return b


def _test_readings(train: pl.DataFrame) -> pl.DataFrame:
    """The capacity tests the training snapshots carry (each on every snapshot until the
    next test): SoH (fraction of rating, C10-equivalent), its test day, and whether the
    snapshot's deep-discharge reading is that test's own discharge."""
    return (train.filter(pl.col("last_capacity_test_soh").is_not_null())
            .select("battery_id", "discharge_ah_per_v", "r_at_capacity_test",
                    test_day=(pl.col("ts").dt.epoch("s") / 86_400.0
                              - pl.col("capacity_test_age_days")).round(0),
                    soh=pl.col("last_capacity_test_soh") / 100.0,
                    same_event=(pl.col("capacity_test_age_days")
                                - pl.col("discharge_soh_age_days")).abs() <= 1.0))


def _fit_resistance_gain(train: pl.DataFrame) -> float:
    """g from consecutive tests of one unit: f2 - f1 = (R2 / R1 - 1)(1 / g + f1) for R =
    R0 (1 + g f), so z = f2 - f1 - rho f1 against rho = R2 / R1 - 1 has slope 1 / g through
    the origin. Test errors sit in z only (they do not bias the slope); the 30-day
    resistances are precise to ~0.3 %."""
    f = (1.0 - pl.col("soh")) / LOSS_AT_EOL
    pairs = (_test_readings(train).drop_nulls("r_at_capacity_test")
             .unique(["battery_id", "test_day"]).sort("battery_id", "test_day")
             .with_columns(f=f, f1=f.shift(1).over("battery_id"),
                           rho=(pl.col("r_at_capacity_test")
                                / pl.col("r_at_capacity_test").shift(1).over("battery_id") - 1))
             .drop_nulls(["f1", "rho"]))
    if pairs.height < MIN_FIT_ROWS:
        return PRIORS.resistance_gain
    rho = pairs["rho"].to_numpy()
    z = (pairs["f"] - pairs["f1"] - pairs["rho"] * pairs["f1"]).to_numpy()
    inv_g = float(huber(rho[:, None], z)[0])
    return 1.0 / inv_g if inv_g > 0 else PRIORS.resistance_gain


def _fit_discharge_soh(train: pl.DataFrame) -> tuple[float, float, float]:
    """The deep-discharge reading calibrated on the capacity tests it coincides with (the
    test discharge is what the monitor records): SoH = c0 + c1 x + c2 x^2, since the voltage
    drop grows faster than linearly as a worn block nears its knee."""
    rows = (_test_readings(train).filter(pl.col("same_event")).drop_nulls("discharge_ah_per_v")
            .unique(["battery_id", "test_day"]))
    if rows.height < MIN_FIT_ROWS:
        return PRIORS.discharge_soh_coefs
    x = rows["discharge_ah_per_v"].to_numpy()
    c0, c1, c2 = huber(np.column_stack([np.ones_like(x), x, x * x]), rows["soh"].to_numpy())
    return float(c0), float(c1), float(c2)


def _fit_float_current(train: pl.DataFrame) -> dict[str, float]:
    """The healthy float current per Ah at 25 degC and the set point, on the youngest quarter
    of the training rows (dry-out raises the current). Its temperature and voltage
    sensitivities stay the datasheet's: in a series string the current is shared by blocks of
    different temperatures, so a regression across blocks confounds them (measured: 0.127
    log2/degC on a small fleet against the datasheet's 0.1)."""
    young = train.filter(
        (pl.col("age_days") <= pl.col("age_days").quantile(YOUNG_SHARE))
        & (pl.col("float_current_7d") > 0)).drop_nulls(["temp_mean_7d", "float_dev_30d"])
    if young.height < MIN_FIT_ROWS:
        return {}
    prior = PRIORS
    y = (np.log2(1e3 * young["float_current_7d"] / young["rated_capacity_ah"]).to_numpy()
         - prior.float_log2_per_c * (young["temp_mean_7d"].to_numpy() - 25.0)
         - prior.float_log2_per_v * young["float_dev_30d"].to_numpy())
    b = huber(np.ones((young.height, 1)), y)
    return {"float_log2_ma_per_ah": float(b[0])}


def _fit_fade_shape(train: pl.DataFrame, label: str, laws: Laws) -> float:
    """The a on FADE_GRID whose projection (`project_health` from the averaged measurements)
    has the smallest median absolute error in log(1 + days) against the training labels."""
    r_new = laws.new_resistance_avg(train)
    r_now, slope = column(train, "r_30d"), column(train, "r_slope_365d")
    y = np.log1p(column(train, label))

    def log_errors(a: float) -> np.ndarray:
        _, days = project_health(r_new, r_now, slope, laws.resistance_gain, a)
        err = np.abs(np.log1p(days) - y)
        return err[np.isfinite(err)]

    if len(log_errors(PRIORS.fade_linear_share)) < MIN_FIT_ROWS:
        return PRIORS.fade_linear_share
    return float(FADE_GRID[int(np.argmin([np.median(log_errors(a)) for a in FADE_GRID]))])


def column(frame: pl.DataFrame, name: str) -> np.ndarray:
    """A frame column as float64 NumPy, missing values as NaN."""
    return frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy()


def datasheet() -> pl.DataFrame:
    """Per battery model code: the datasheet figures the features use (fleet config)."""
    models = load_fleet().battery_models
    return pl.DataFrame({
        "battery_model": [m.code for m in models],
        "design_life_years": [m.design_life_years for m in models],
        "r_nominal": [m.new_resistance_mohm for m in models],
        "life_halving_c": [m.life_halving_c for m in models],
        "ohmic_temp_coeff_per_c": [m.ohmic_temp_coeff_per_c for m in models],
        "peukert_exponent": [m.peukert_exponent for m in models],
    })
