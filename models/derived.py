"""Derived model inputs: ratios and projections that trees cannot form themselves, computed
from snapshot columns only, so training, scoring and `rul predict` derive them the same way."""

from __future__ import annotations

import numpy as np
import polars as pl

from models.projection import new_resistance, project_health
from simulator import physics as ph

DERIVED = ["float_current_norm", "r_rise_per_year_180d", "r_rise_per_year_365d",
           "soh_projected_pct", "rul_projected_days", "soh_projected_avg_pct",
           "rul_projected_avg_days"]


def derive_features(frame: pl.DataFrame) -> pl.DataFrame:
    """The snapshot frame with DERIVED added: float current over what a healthy block would
    draw at its temperature and float voltage (physics.float_current; dry-out shows as a
    rising ratio, DOMAIN §3, while temperature alone moves the raw current 2x per 10 degC);
    the resistance rise per year relative to today's resistance (free of the unit's unknown
    new resistance); today's SoH and the days to 80 % projected through the resistance since
    the latest capacity measurement, and since the average of the last year's measurements
    (models.projection)."""
    p = ph.PhysicsParams()
    temp = _col(frame, "temp_mean_7d")
    setpoint = ph.float_setpoint(temp, p) + _col(frame, "float_dev_30d")
    healthy = ph.float_current(_col(frame, "rated_capacity_ah"), temp, setpoint, p)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = pl.Series(_col(frame, "float_current_7d") / healthy)
    r_now, slope = _col(frame, "r_30d"), _col(frame, "r_slope_365d")
    soh, days = project_health(new_resistance(*_latest_measurement(frame), p), r_now, slope, p)
    soh_avg, days_avg = project_health(_col(frame, "r0_est"), r_now, slope, p)
    return frame.with_columns(
        float_current_norm=ratio,
        soh_projected_pct=pl.Series(soh), rul_projected_days=pl.Series(days),
        soh_projected_avg_pct=pl.Series(soh_avg), rul_projected_avg_days=pl.Series(days_avg),
        **{f"r_rise_per_year_{w}": pl.col(f"r_slope_{w}") * 365.25 / pl.col("r_now")
           for w in ("180d", "365d")})


def _col(frame: pl.DataFrame, name: str) -> np.ndarray:
    return frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy()


def _latest_measurement(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """SoH and the 30-day resistance at the more recent of the last capacity test and the last
    deep-discharge estimate (NaN where neither exists)."""
    test_age = np.nan_to_num(_col(frame, "capacity_test_age_days"), nan=np.inf)
    discharge_age = np.nan_to_num(_col(frame, "discharge_soh_age_days"), nan=np.inf)
    use_test = test_age <= discharge_age
    soh = np.where(use_test, _col(frame, "last_capacity_test_soh"),
                   _col(frame, "discharge_soh_pct"))
    r = np.where(use_test, _col(frame, "r_at_capacity_test"), _col(frame, "r_at_discharge_soh"))
    return soh, r
