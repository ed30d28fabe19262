"""Derived model inputs: ratios, calibrated readings and projections that trees cannot form
themselves, computed from snapshot columns and the fitted `models.laws.Laws` only, so
training, scoring and `rul predict` derive them the same way, with the laws the model was
trained with."""

from __future__ import annotations

import numpy as np
import polars as pl

from models.laws import Laws, column
from models.projection import new_resistance, project_health

DERIVED = ["float_current_norm", "r_rise_per_year_180d", "r_rise_per_year_365d",
           "discharge_soh_pct", "r0_est", "soh_projected_pct", "rul_projected_days",
           "soh_projected_avg_pct", "rul_projected_avg_days"]


def derive_features(frame: pl.DataFrame, laws: Laws) -> pl.DataFrame:
    """The snapshot frame with DERIVED added: float current over what a healthy block draws
    at its temperature and float deviation (fitted on young training blocks; dry-out shows as
    a rising ratio, DOMAIN §3, while temperature alone moves the raw current 2x per ~10
    degC); the resistance rise per year relative to today's resistance (free of the unit's
    unknown new resistance); the deep-discharge reading as SoH; the unit's new resistance
    from the last year's measurements; today's SoH and the days to 80 % projected through
    the resistance since the latest capacity measurement, and since the last year's
    measurements on average (models.projection)."""
    g, a = laws.resistance_gain, laws.fade_linear_share
    healthy = laws.healthy_float_current(column(frame, "rated_capacity_ah"),
                                         column(frame, "temp_mean_7d"),
                                         column(frame, "float_dev_30d"))
    discharge_soh = 100.0 * laws.discharge_soh(column(frame, "discharge_ah_per_v"))
    r0_avg = laws.new_resistance_avg(frame)
    r_now, slope = column(frame, "r_30d"), column(frame, "r_slope_365d")
    soh, days = project_health(new_resistance(*_latest_measurement(frame, discharge_soh), g),
                               r_now, slope, g, a)
    soh_avg, days_avg = project_health(r0_avg, r_now, slope, g, a)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = column(frame, "float_current_7d") / healthy
    return frame.with_columns(
        float_current_norm=pl.Series(ratio), discharge_soh_pct=pl.Series(discharge_soh),
        r0_est=pl.Series(r0_avg),
        soh_projected_pct=pl.Series(soh), rul_projected_days=pl.Series(days),
        soh_projected_avg_pct=pl.Series(soh_avg), rul_projected_avg_days=pl.Series(days_avg),
        **{f"r_rise_per_year_{w}": pl.col(f"r_slope_{w}") * 365.25 / pl.col("r_now")
           for w in ("180d", "365d")})


def _latest_measurement(frame: pl.DataFrame,
                        discharge_soh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SoH and the 30-day resistance at the more recent of the last capacity test and the last
    deep-discharge reading (NaN where neither exists)."""
    test_age = np.nan_to_num(column(frame, "capacity_test_age_days"), nan=np.inf)
    discharge_age = np.nan_to_num(column(frame, "discharge_soh_age_days"), nan=np.inf)
    use_test = test_age <= discharge_age
    soh = np.where(use_test, column(frame, "last_capacity_test_soh"), discharge_soh)
    r = np.where(use_test, column(frame, "r_at_capacity_test"),
                 column(frame, "r_at_discharge_soh"))
    return soh, r
