"""Telemetry synthesis: what a battery monitor records, as (time x unit) arrays per chunk.

Slow state (capacity, resistance) comes from the hourly physics clock; fast quantities
(mode, current, voltage, temperature) are evaluated at the output step from the environment
and the charging regime. A string is a series circuit (DOMAIN §8): one current flows through
every block, the charger holds the string voltage, and each block settles at the voltage its
own state needs at that current, so a hot, dried-out or shorted block shows up as a voltage
share and in the string current. Monitor effects (each error model's source beside it):
sensor noise and calibration errors, ohmic readings that depend on temperature and state of
charge with outliers, the monitor's own coulomb-counted state of charge, monitor outages
(missing rows) and stuck sensors, all drawn as continuous-time events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from simulator import ageing, intervals
from simulator import physics as ph
from simulator.schema import MODES, conform

VOLTAGE_NOISE_V = 0.005  # monitor accuracy ~0.05 % of 12 V (IEEE 1491 class monitors)
TEMPERATURE_NOISE_C = 0.15  # thermistor/probe repeatability
CURRENT_NOISE_A = 0.01  # string Hall sensor: ~10 mA resolution plus 0.5 % of reading per sample
CURRENT_GAIN_SIGMA = 0.0075  # shunt/Hall gain error ~0.5-1 % per string (DOMAIN §8)
CURRENT_OFFSET_SIGMA_A = 0.01  # zero offset per string (DOMAIN §8: ~0.5-1 % class sensors)
OHMIC_NOISE = 0.015  # repeatability of the monitor's ohmic reading, 1-2 % (DOMAIN §8)
OHMIC_TEMP_COEFF = 0.01  # ohmic value falls ~1 % per degC near room temperature (DOMAIN §8)
OHMIC_SOC_GAIN = 0.3  # ohmic value ~+10 % at half charge, ~+30 % empty (lowest full; DOMAIN §8)
OHMIC_OUTLIER_SHARE = 0.005  # a loose sense lead or probe contact: a few readings in a thousand
OHMIC_OUTLIER_RANGE = (1.3, 2.0)  # ... read high by 30-100 % (IEEE 1188 connection checks)
SHORTED_CELL_DROP_V = 2.1  # one dead cell (DOMAIN §3)
RUNAWAY_RISE_C = 14.0  # block-over-room rise as runaway develops (>= 5 degC, DOMAIN §3)
# A runaway is a string event in a series circuit: one block starts it, the heat and the float
# current feed each other through the shared current and rack, and the string current climbs
# far past 3x normal (DOMAIN §3, §5); the block that started it runs hottest.
RUNAWAY_CURRENT_GAIN = 7.0
RUNAWAY_NEIGHBOUR_SHARE = 0.3  # the string's other blocks warm by this share of its rise
# dry-out: a block's float current rises with wear (DOMAIN §3), doubling by end of life, so a
# dried-out block floats ~0.6 V low near the end (a string-imbalance alarm, DOMAIN §5)
DRY_OUT_CURRENT_GAIN = 1.0
SULFATION_FLOAT_DROP_V = 0.1  # sulfating blocks float low as they wear (DOMAIN §3)
DISCHARGE_HEATING_C = 0.8  # I^2 R heat: ~1 degC over an hour of UPS discharge
MONITOR_OUTAGES_PER_YEAR = 3.0  # per string: comms loss, monitor reboot
MONITOR_OUTAGE_MEDIAN_H = 4.0
STUCK_PER_YEAR = 0.3  # per unit: a sensor that stops updating
STUCK_MEDIAN_H = 8.0


@dataclass
class FleetState:
    """Everything about the site's units (all generations) the telemetry needs."""

    battery_id: pl.Series
    string_id: pl.Series
    site_id: str
    string_idx: np.ndarray
    install_s: np.ndarray
    removed_s: np.ndarray
    rated_ah: np.ndarray
    hotspot_c: np.ndarray
    float_share_v: np.ndarray  # the block's own float share around the string mean
    charger_offset_v: float | np.ndarray  # the charger's set-point error per block (per unit)
    wear_mode: np.ndarray
    short_s: np.ndarray
    runaway_s: np.ndarray
    window_start_s: float
    capacity_ah: np.ndarray  # hourly (n_hours, n_units)
    resistance_mohm: np.ndarray
    life_used: np.ndarray
    ohmic_noise: np.ndarray  # daily (n_days, n_units): the reading's own error ...
    ohmic_outlier: np.ndarray  # ... and an occasional bad contact (factor, 1 when none)
    string_rated_ah: np.ndarray  # per string
    current_gain: np.ndarray  # per string: the current sensor's gain error (noise scale applied)
    current_offset_a: np.ndarray  # per string: its zero offset (noise scale applied)
    modes: list[dict]  # per string, from operations.mode_intervals
    monitor_start_pct: list[np.ndarray]  # per string: the monitor's SoC as each discharge starts
    monitor_gaps: list[tuple[np.ndarray, np.ndarray]]  # per string
    stuck: list[tuple[np.ndarray, np.ndarray]]  # per unit
    # how a runaway escalates (per unit or one value): the live run's runaway scenario drives
    # it harder and faster than a field runaway develops; the history uses the defaults
    runaway_ramp_s: np.ndarray | float = ageing.RUNAWAY_COLLAPSE_S
    runaway_rise_c: np.ndarray | float = RUNAWAY_RISE_C


def monitor_start_soc(mode: dict, gain: float, rated_ah: float, p: ph.PhysicsParams) -> np.ndarray:
    """The monitor's coulomb-counted SoC (%) as each discharge of one string starts: 100 after a
    completed boost (the monitor resets to full on float), else what it had counted by then.
    It counts the measured current (gain error included) against the rated capacity, so it
    drifts from the truth as the blocks age and over repeated discharges (DOMAIN §8)."""
    s, e, amps = mode["discharge"]
    _, b_end, deficit0 = mode["boost"]
    start = np.full(len(s), 100.0)
    for j in range(1, len(s)):
        if s[j] > b_end[j - 1]:
            continue
        counted = _count_after_boost(start[j - 1], amps[j - 1], e[j - 1] - s[j - 1],
                                     b_end[j - 1] - e[j - 1], deficit0[j - 1], gain, rated_ah, p)
        start[j] = counted
    return start


def _count_after_boost(start_pct, amps, on_battery_s, boost_s, deficit0, gain, rated_ah, p):
    """Monitor SoC (%) a boost of `boost_s` seconds after a discharge left it."""
    out = start_pct - 100.0 * (1 + gain) * amps * on_battery_s / 3600.0 / rated_ah
    returned = (deficit0 - ph.boost_deficit(boost_s / 3600.0, deficit0, p)) / p.charge_efficiency
    return np.minimum(out + 100.0 * (1 + gain) * returned, 100.0)


def _string_view(t: np.ndarray, state: FleetState, fn) -> np.ndarray:
    """(n_t, n_strings) array of `fn(t, string_no, mode_dict)`."""
    return np.stack([fn(t, k, m) for k, m in enumerate(state.modes)], axis=1)


def chunk_frame(
    t: np.ndarray, block_c: np.ndarray, state: FleetState, p: ph.PhysicsParams,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """Telemetry rows for the time grid `t` (seconds), ordered by time then unit.
    `block_c` is the room temperature as the blocks feel it (after their thermal lag)."""
    n_t, n_u = len(t), len(state.install_s)
    n_s = len(state.modes)
    noise = p.measurement_noise_scale
    tt = t[:, None]
    sidx = state.string_idx
    hour = np.clip(((t - state.window_start_s) // 3600).astype(np.int64), 0,
                   len(state.capacity_ah) - 1)
    cap, res = state.capacity_ah[hour], state.resistance_mohm[hour]
    u = np.nan_to_num(state.life_used[hour])
    rated = state.rated_ah[None, :]
    on = (tt >= state.install_s) & (tt < state.removed_s)  # blocks in their string now
    member = np.zeros((n_u, n_s))
    member[np.arange(n_u), sidx] = 1.0
    n_on = np.maximum(on @ member, 1.0)

    def string_mean(x):  # mean over each string's blocks in service, back on every block
        return ((np.where(on, x, 0.0) @ member) / n_on)[:, sidx]

    d_current = _string_view(t, state, lambda x, k, m: _event_value(x, m["discharge"]))
    d_since = _string_view(t, state, lambda x, k, m: intervals.since_start(x, *m["discharge"][:2]))
    b_deficit0 = _string_view(t, state, lambda x, k, m: _event_value(x, m["boost"]))
    b_since = _string_view(t, state, lambda x, k, m: intervals.since_start(x, *m["boost"][:2]))
    equalizing = _string_view(t, state, lambda x, k, m: intervals.inside(x, *m["equalize"]))
    discharging, boosting = ~np.isnan(d_since), ~np.isnan(b_since) & np.isnan(d_since)
    mode_s = np.where(discharging, 3, np.where(boosting, 1, np.where(equalizing, 2, 0)))
    mode = mode_s[:, sidx]

    runaway = np.where(on, np.clip((tt - state.runaway_s) / state.runaway_ramp_s, 0.0, 1.0), 0.0)
    string_runaway = _string_max(runaway, sidx, n_s)[:, sidx]
    shorted = tt >= state.short_s
    d_hours = np.nan_to_num(d_since)[:, sidx] / 3600.0
    rise = np.maximum(runaway, RUNAWAY_NEIGHBOUR_SHARE * string_runaway) ** 1.5
    temp = (block_c[:, None] + state.hotspot_c + state.runaway_rise_c * rise
            + np.where(mode == 3, DISCHARGE_HEATING_C * np.minimum(d_hours, 1.0), 0.0))

    # Float and equalize: each block's voltage at the common current I is
    # S(T_b) + shift_b + s log2(I / I0_b); the charger holds their sum (DOMAIN §8).
    s_v = p.float_current_doubling_v
    wear_gain = np.where(state.wear_mode == ageing.DRY_OUT, 1.0 + DRY_OUT_CURRENT_GAIN * u**2, 1.0)
    log2_i0 = np.log2(ph.float_current(rated, temp, ph.float_setpoint(temp, p), p) * wear_gain
                      * (1.0 + RUNAWAY_CURRENT_GAIN * string_runaway))
    shift = (state.float_share_v
             - np.where(state.wear_mode == ageing.SULFATION, SULFATION_FLOAT_DROP_V * u, 0.0)
             - SHORTED_CELL_DROP_V * shorted)
    own = ph.float_setpoint(temp, p) + shift
    charger = ph.float_setpoint(block_c, p)[:, None] + state.charger_offset_v
    charger = charger + np.where(mode == 2, p.equalize_v_per_block - p.float_v_per_block, 0.0)
    log2_i = (charger - string_mean(own)) / s_v + string_mean(log2_i0)
    i_string = np.exp2(log2_i)
    v_float = own + s_v * (log2_i - log2_i0)

    # Boost: constant current, then constant voltage with a tapering current (physics.boost_*)
    b_hours = np.nan_to_num(b_since)[:, sidx] / 3600.0
    deficit = np.where(mode == 1, ph.boost_deficit(b_hours, b_deficit0[:, sidx], p), 0.0)
    string_rated = state.string_rated_ah[sidx][None, :]
    i_boost = ph.boost_current(deficit, string_rated, p) + i_string * np.exp2(
        (p.boost_v_per_block - p.float_v_per_block) / s_v)
    v_boost = (ph.boost_voltage(deficit, block_c[:, None], p) + shift
               + i_boost * (res - string_mean(res)) * 1e-3)
    cv = deficit <= 1.0 - p.boost_acceptance_soc  # constant voltage: the string sum is held
    v_boost = v_boost - np.where(cv, string_mean(v_boost) - ph.boost_voltage(
        deficit, block_c[:, None], p), 0.0)

    # Discharge: the load current through every block; each block's own capacity and resistance
    i_dis = d_current[:, sidx]
    drawn = i_dis * d_hours
    v_dis = ph.discharge_voltage(drawn, np.maximum(cap, 1e-6), i_dis, res * 1e-3, rated, p)
    v_dis = v_dis - SHORTED_CELL_DROP_V * shorted

    voltage = np.choose(mode, [v_float, v_boost, v_float, v_dis])
    current = np.choose(mode, [i_string, i_boost, i_string, -i_dis])
    soc_true = np.choose(mode, [np.ones_like(u), 1.0 - deficit, np.ones_like(u),
                                np.clip(1.0 - drawn / np.maximum(cap, 1e-6), 0.0, 1.0)])

    # the string's current sensor: gain and zero errors per string, noise per sample
    current = ((1 + state.current_gain[sidx]) * current + state.current_offset_a[sidx]
               + noise * (CURRENT_NOISE_A + 0.005 * np.abs(current))
               * rng.standard_normal((n_t, n_s))[:, sidx])
    soc_pct = _monitor_soc(t, state, p)[:, sidx]

    day = np.clip(((t - state.window_start_s) // 86_400).astype(np.int64), 0,
                  len(state.ohmic_noise) - 1)
    r_meas = (res * np.exp(-OHMIC_TEMP_COEFF * (temp - p.reference_temp_c))
              * (1.0 + OHMIC_SOC_GAIN * (1.0 - soc_true) ** 1.5)
              * (1.0 + noise * OHMIC_NOISE * state.ohmic_noise[day]) * state.ohmic_outlier[day])
    g_meas = 1000.0 / r_meas  # conductance is the reciprocal of the same reading (DOMAIN §8)

    voltage = voltage + noise * VOLTAGE_NOISE_V * rng.standard_normal((n_t, n_u))
    temp = temp + noise * TEMPERATURE_NOISE_C * rng.standard_normal((n_t, n_u))

    stuck = np.stack([intervals.inside(t, *s) for s in state.stuck], axis=1)
    if stuck.any():
        last_good = np.maximum.accumulate(np.where(stuck, 0, np.arange(n_t)[:, None]), axis=0)
        cols = np.arange(n_u)[None, :]
        voltage, temp = voltage[last_good, cols], temp[last_good, cols]

    gap = np.stack([intervals.inside(t, *g) for g in state.monitor_gaps], axis=1)[:, sidx]
    ti, ui = np.nonzero(on & ~gap)
    ts = pl.Series("ts", (t[ti] * 1e6).astype(np.int64)).cast(pl.Datetime("us", "UTC"))
    frame = pl.DataFrame({
        "ts": ts,
        "battery_id": state.battery_id.gather(ui),
        "string_id": state.string_id.gather(ui),
        "site_id": pl.repeat(state.site_id, len(ti), eager=True),
        "voltage_v": voltage[ti, ui].astype(np.float32),
        "current_a": current[ti, ui].astype(np.float32),
        "temperature_c": temp[ti, ui].astype(np.float32),
        "resistance_mohm": r_meas[ti, ui].astype(np.float32),
        "conductance_s": g_meas[ti, ui].astype(np.float32),
        "soc_pct": soc_pct[ti, ui].astype(np.float32),
        "mode": pl.Series(MODES).gather(mode[ti, ui]),
    })
    return conform(frame, "telemetry")


def _monitor_soc(t: np.ndarray, state: FleetState, p: ph.PhysicsParams) -> np.ndarray:
    """(n_t, n_strings) monitor SoC: 100 on float, counted down in a discharge and back up
    (capped at 100) in the boost after it, from the anchors of `monitor_start_soc`."""
    out = np.full((len(t), len(state.modes)), 100.0)
    for k, m in enumerate(state.modes):
        s, e, amps = m["discharge"]
        if len(s) == 0:
            continue
        _, b_end, deficit0 = m["boost"]
        gain, rated = state.current_gain[k], state.string_rated_ah[k]
        j = np.maximum(np.searchsorted(s, t, side="right") - 1, 0)
        start = state.monitor_start_pct[k][j]
        in_dis = (t >= s[j]) & (t < e[j])
        in_boost = (t >= e[j]) & (t < b_end[j]) & ~in_dis
        counted_dis = start - 100.0 * (1 + gain) * amps[j] * (t - s[j]) / 3600.0 / rated
        counted_boost = _count_after_boost(start, amps[j], e[j] - s[j], t - e[j], deficit0[j],
                                           gain, rated, p)
        out[:, k] = np.where(in_dis, counted_dis, np.where(in_boost, counted_boost, 100.0))
    return np.clip(out, 0.0, 100.0)


def _string_max(x: np.ndarray, string_idx: np.ndarray, n_strings: int) -> np.ndarray:
    """(n_t, n_strings): the largest value of each string's blocks."""
    out = np.zeros((x.shape[0], n_strings))
    for k in range(n_strings):
        cols = string_idx == k
        if cols.any():
            out[:, k] = x[:, cols].max(axis=1)
    return out


def _event_value(t: np.ndarray, spec: tuple) -> np.ndarray:
    """Value attached to the interval containing t (0 outside), e.g. an event's current."""
    starts, ends, values = spec
    if len(starts) == 0:
        return np.zeros(len(t))
    i = np.maximum(np.searchsorted(starts, t, side="right") - 1, 0)
    return np.where((t >= starts[i]) & (t < ends[i]), values[i], 0.0)
