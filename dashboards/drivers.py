"""The model's top drivers in words. Scores carry them as `feature=value (effect d)`, the SHAP
effect of that feature on the P50 in days; a site engineer reads "resistance against its own
baseline: 18 % above — shortens the forecast by 120 days", not `r_vs_baseline=1.18 (-120 d)`:
the feature in words, the value in the unit people measure it in, at a sensible precision."""

from __future__ import annotations

import re

from dashboards.format import number

DRIVER = re.compile(r"^(?P<name>[^=]+)=(?P<value>.*) \((?P<effect>[+-]?[\d.,]+) d\)$")
SHARE, VERSUS = "share", "versus"  # a 0-1 share shown in %, a ratio shown as % above/below
PER_YEAR = 365.25  # slopes are per day; a year's change is what people compare
# feature: (words, unit or SHARE / VERSUS, scale); models.features.FEATURES and
# models.derived.DERIVED name them, the unit is the one the feature is computed in
WORDS: dict[str, tuple[str, str, float]] = {
    "age_days": ("age", "days", 1),
    "battery_model": ("battery model", "", 1),
    "rated_capacity_ah": ("rated capacity", "Ah", 1),
    "design_life_years": ("design life", "years", 1),
    "life_used_est": ("design life used (heat-weighted)", SHARE, 1),
    "site_temp_30d": ("site's mean battery temperature over the last 30 days", "°C", 1),
    "hotspot_c": ("position hot spot, above the site's mean", "°C", 1),
    "float_dev_30d": ("float voltage off its set point, mean over the last 30 days", "V", 1),
    "float_current_7d": ("float current, mean over the last 7 days", "A", 1),
    "float_current_norm": ("float current against a healthy block's", VERSUS, 1),
    "r_now": ("resistance now (at 25 °C)", "mΩ", 1),
    "r_30d": ("resistance, mean over the last 30 days (at 25 °C)", "mΩ", 1),
    "g_now": ("conductance now (at 25 °C)", "S", 1),
    "r_vs_nominal": ("resistance against a new block's", VERSUS, 1),
    "g_vs_nominal": ("conductance against a new block's", VERSUS, 1),
    "r_vs_baseline": ("resistance against its own baseline", VERSUS, 1),
    "r_vs_first30": ("resistance against its first month", VERSUS, 1),
    "r0_est": ("estimated resistance when new", "mΩ", 1),
    "r_at_capacity_test": ("resistance at its last capacity test", "mΩ", 1),
    "r_at_discharge_soh": ("resistance when its health was last measured", "mΩ", 1),
    "discharge_ah_life": ("charge delivered in discharges over its life", "Ah", 1),
    "discharge_days_life": ("days with a discharge", "days", 1),
    "deepest_discharge_life": ("deepest discharge so far", SHARE, 1),
    "last_discharge_min_v": ("lowest voltage in the last discharge", "V", 1),
    "last_capacity_test_soh": ("state of health at the last capacity test", "%", 1),
    "capacity_test_age_days": ("time since the last capacity test", "days", 1),
    "discharge_ah_per_v": ("Ah delivered per volt of sag in deep discharges", "Ah/V", 1),
    "discharge_soh_age_days": ("time since a deep discharge last measured its health", "days", 1),
    "discharge_soh_pct": ("state of health measured by deep discharges", "%", 1),
    "soh_projected_pct": ("projected state of health now", "%", 1),
    "soh_projected_avg_pct": ("projected state of health now (averaged)", "%", 1),
    "rul_projected_days": ("physics projection of the time to 80 % capacity", "days", 1),
    "rul_projected_avg_days": ("physics projection of the time to 80 % capacity (averaged)",
                               "days", 1),
    "observed_days": ("days of readings", "days", 1),
    "meas_inv_r": ("conductance from the measurements now", "", 1),
    "meas_dis_inv_r": ("conductance at the last deep discharge", "", 1),
}
WINDOW = re.compile(r"^(?P<stat>temp_mean|temp_max|hours_above_30|hours_above_35|arrhenius_hours|"
                    r"r_slope|g_slope|r_rise_per_year)_(?P<window>\d+d|life)$")
STATS = {"temp_mean": ("battery temperature, mean {over}", "°C", 1),
         "temp_max": ("battery temperature, highest {over}", "°C", 1),
         "hours_above_30": ("hours above 30 °C {over}", "hours", 1),
         "hours_above_35": ("hours above 35 °C {over}", "hours", 1),
         "arrhenius_hours": ("ageing hours at 25 °C equivalent {over}", "hours", 1),
         "r_slope": ("resistance trend {over}", "mΩ a year", PER_YEAR),
         "g_slope": ("conductance trend {over}", "S a year", PER_YEAR),
         "r_rise_per_year": ("resistance rise, trend {over}", "% a year", 100)}
DECIMALS = {"°C": 1, "V": 3, "A": 2, "mΩ": 2, "mΩ a year": 2, "S": 1, "S a year": 1, "%": 1,
            "% a year": 1, "Ah/V": 0, "days": 0, "hours": 0, "Ah": 0, "years": 1}


def describe(name: str) -> tuple[str, str, float]:
    """(words, unit, scale) of a feature; an unknown one keeps its name without underscores."""
    if name in WORDS:
        return WORDS[name]
    if match := WINDOW.match(name):
        words, unit, scale = STATS[match["stat"]]
        window = match["window"]
        over = "over its life" if window == "life" else f"over the last {window[:-1]} days"
        return words.format(over=over), unit, scale
    return name.replace("_", " "), "", 1


def shown(value: str, unit: str, scale: float) -> str:
    """A driver's value in its unit; scores write numbers with 3 significant digits."""
    if value == "n/a":
        return "not measured"
    try:
        x = float(value) * scale
    except ValueError:
        return value
    if unit == VERSUS:
        change = (x - 1) * 100
        return "about the same" if round(change) == 0 else \
            f"{abs(change):.0f} % {'above' if change > 0 else 'below'}"
    if unit == SHARE:
        return f"{x * 100:.0f} %"
    if unit in DECIMALS:  # a trend carries its sign: a rise reads "+0.37 mΩ a year"
        text = number(x, DECIMALS[unit], unit)
        return f"+{text}" if unit.endswith("a year") and x > 0 else text
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def in_words(driver: str | None) -> str | None:
    """One driver as a sentence; None for an empty slot."""
    if not driver:
        return None
    match = DRIVER.match(driver.strip())
    if not match:
        return driver
    name, effect = match["name"], float(match["effect"].replace(",", ""))
    words, unit, scale = describe(name)
    verb = "shortens" if effect < 0 else "lengthens"
    span = f"{abs(effect):,.0f} day{'' if round(abs(effect)) == 1 else 's'}"
    return f"{words}: {shown(match['value'], unit, scale)} — {verb} the forecast by {span}"
