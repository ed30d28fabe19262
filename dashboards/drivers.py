"""The model's top drivers in words. Scores carry them as `feature=value (effect d)`, the SHAP
effect of that feature on the P50 in days; a site engineer reads "resistance 18 % above its own
baseline shortens the forecast by 120 days", not `r_vs_baseline=0.18 (-120 d)`."""

from __future__ import annotations

import re

DRIVER = re.compile(r"^(?P<name>[^=]+)=(?P<value>.*) \((?P<effect>[+-]?[\d.,]+) d\)$")
WORDS = {
    "age_days": "age (days)",
    "battery_model": "battery model",
    "deepest_discharge_life": "deepest discharge so far (depth)",
    "design_life_years": "design life (years)",
    "discharge_ah_life": "Ah discharged over its life",
    "discharge_ah_per_v": "Ah delivered per volt of sag in deep discharges",
    "discharge_days_life": "days with a discharge",
    "discharge_soh_age_days": "days since a deep discharge last measured its health",
    "discharge_soh_pct": "state of health measured by deep discharges (%)",
    "float_current_7d": "float current, last 7 days (A)",
    "float_current_norm": "float current against a healthy block's",
    "float_dev_30d": "float voltage off its set point, last 30 days (V)",
    "hotspot_c": "position hot spot (°C above the room)",
    "hours_above_30_life": "hours above 30 °C over its life",
    "last_capacity_test_soh": "last capacity test (state of health)",
    "last_discharge_min_v": "lowest voltage in the last discharge (V)",
    "life_used_est": "share of design life used (heat-weighted)",
    "meas_dis_inv_r": "conductance at the last deep discharge",
    "meas_inv_r": "conductance now",
    "r0_est": "estimated resistance when new (mΩ)",
    "r_at_discharge_soh": "resistance when its health was last measured (mΩ)",
    "r_rise_per_year_365d": "resistance rise per year",
    "r_slope_180d": "resistance trend, last 180 days",
    "r_slope_365d": "resistance trend, last 365 days",
    "r_vs_baseline": "resistance against its own baseline",
    "r_vs_first30": "resistance against its first month",
    "rated_capacity_ah": "rated capacity (Ah)",
    "rul_projected_avg_days": "physics projection of days to 80 % (averaged)",
    "rul_projected_days": "physics projection of days to 80 %",
    "soh_projected_avg_pct": "projected state of health now (%, averaged)",
    "soh_projected_pct": "projected state of health now (%)",
    "temp_mean_life": "mean temperature over its life (°C)",
}


def in_words(driver: str | None) -> str | None:
    """One driver as a sentence; None for an empty slot."""
    if not driver:
        return None
    match = DRIVER.match(driver.strip())
    if not match:
        return driver
    name, value, effect = match["name"], match["value"], float(match["effect"].replace(",", ""))
    label = WORDS.get(name, name.replace("_", " "))
    shown = "not measured" if value == "n/a" else _number(value)
    verb = "shortens" if effect < 0 else "lengthens"
    return f"{label}: {shown} — {verb} the forecast by {abs(effect):,.0f} days"


def _number(value: str) -> str:
    """Scores write values as they come (`1.59e+03`); a reader wants `1,590`."""
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:,.0f}" if abs(number) >= 100 else f"{number:.3g}"
