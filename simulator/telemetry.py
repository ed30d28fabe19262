"""Telemetry synthesis: what a battery monitor records, as (time x unit) arrays per chunk.

Slow state (capacity, resistance) comes from the hourly physics clock; fast quantities
(mode, current, voltage, temperature) are evaluated at the output step from the environment
and the charging regime. Monitor effects: sensor noise, daily ohmic readings, monitor
outages (missing rows) and stuck sensors (flat values), all drawn as continuous-time events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from simulator import ageing, intervals
from simulator import physics as ph
from simulator.operations import EQUALIZE_V
from simulator.schema import MODES, conform

VOLTAGE_NOISE_V = 0.005  # monitor accuracy ~0.05 % of 12 V (IEEE 1491 class monitors)
TEMPERATURE_NOISE_C = 0.15
CURRENT_NOISE_A = 0.01  # Hall sensor offset noise, plus 1 % of reading
OHMIC_NOISE = 0.015  # repeatability of daily ohmic readings
CONDUCTANCE_NOISE = 0.01
SHORTED_CELL_DROP_V = 2.1  # one dead cell (DOMAIN §3)
RUNAWAY_RISE_C = 14.0  # block-over-room rise as runaway develops (>= 5 degC, DOMAIN §3)
RUNAWAY_CURRENT_GAIN = 7.0  # float current climbs far past 3x normal (DOMAIN §3)
BOOST_LIMIT_V = 14.4  # charger constant-voltage limit per block
BOOST_CURRENT_C = 0.1  # constant-current boost at C/10
BOOST_TAU_H = 3.0  # boost current tapers as the block fills
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
    float_v_offset: np.ndarray
    wear_mode: np.ndarray
    short_s: np.ndarray
    runaway_s: np.ndarray
    window_start_s: float
    capacity_ah: np.ndarray  # hourly (n_hours, n_units)
    resistance_mohm: np.ndarray
    life_used: np.ndarray
    ohmic_noise: np.ndarray  # daily (n_days, n_units)
    modes: list[dict]  # per string, from operations.mode_intervals
    monitor_gaps: list[tuple[np.ndarray, np.ndarray]]  # per string
    stuck: list[tuple[np.ndarray, np.ndarray]]  # per unit


def _per_string(t: np.ndarray, state: FleetState, fn) -> np.ndarray:
    return np.stack([fn(t, m) for m in state.modes], axis=1)[:, state.string_idx]


def chunk_frame(
    t: np.ndarray, block_c: np.ndarray, state: FleetState, p: ph.PhysicsParams,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """Telemetry rows for the time grid `t` (seconds), ordered by time then unit.
    `block_c` is the room temperature as the blocks feel it (after their thermal lag)."""
    n_t, n_u = len(t), len(state.install_s)
    tt = t[:, None]
    hour = np.clip(((t - state.window_start_s) // 3600).astype(np.int64), 0,
                   len(state.capacity_ah) - 1)
    cap, res = state.capacity_ah[hour], state.resistance_mohm[hour]
    u = np.nan_to_num(state.life_used[hour])
    rated = state.rated_ah[None, :]

    def in_mode(name):
        return _per_string(t, state, lambda x, m: intervals.inside(x, *m[name][:2]))

    def since(name):
        return _per_string(t, state, lambda x, m: intervals.since_start(x, *m[name][:2]))

    discharging, boosting, equalizing = in_mode("discharge"), in_mode("boost"), in_mode("equalize")
    mode = np.where(discharging, 3, np.where(boosting, 1, np.where(equalizing, 2, 0)))

    runaway = np.clip((tt - state.runaway_s) / (36 * 3600.0), 0.0, 1.0)
    temp = block_c[:, None] + state.hotspot_c + RUNAWAY_RISE_C * runaway**1.5
    float_v = ph.float_setpoint(block_c, p)[:, None] + state.float_v_offset
    float_v = float_v + np.select(
        [state.wear_mode == ageing.SULFATION, state.wear_mode == ageing.DRY_OUT],
        [-0.1 * u, 0.04 * u], 0.0)
    dry_gain = np.where(state.wear_mode == ageing.DRY_OUT, 1.0 + 2.0 * u, 1.0)
    i_float = ph.float_current(rated, temp, float_v, p) * dry_gain * (
        1.0 + RUNAWAY_CURRENT_GAIN * runaway)

    # discharge: string current from the event, SoC falls with Ah drawn
    d_since_h = np.nan_to_num(since("discharge")) / 3600.0
    d_current = _per_string(t, state, lambda x, m: _event_value(x, m["discharge"]))
    soc_true = np.clip(1.0 - d_current * d_since_h / cap, 0.0, 1.0)
    v_dis = ph.terminal_voltage(ph.ocv(soc_true, p), -d_current, res * 1e-3, rated, p)
    # boost: C/10 constant current tapering off, voltage capped by the charger
    b_since_h = np.nan_to_num(since("boost")) / 3600.0
    b_depth = _per_string(t, state, lambda x, m: _event_value(x, m["boost"]))
    soc_boost = np.clip(1.0 - b_depth * np.exp(-b_since_h / BOOST_TAU_H), 0.0, 1.0)
    i_boost = np.maximum(BOOST_CURRENT_C * rated * b_depth * np.exp(-b_since_h / BOOST_TAU_H),
                         i_float)
    v_boost = np.minimum(ph.terminal_voltage(ph.ocv(soc_boost, p), i_boost, res * 1e-3, rated, p),
                         BOOST_LIMIT_V)
    v_eq = EQUALIZE_V + state.float_v_offset
    i_eq = ph.float_current(rated, temp, v_eq, p)

    voltage = np.choose(mode, [float_v, v_boost, np.broadcast_to(v_eq, float_v.shape), v_dis])
    current = np.choose(mode, [i_float, i_boost, i_eq, -d_current])
    soc = np.choose(mode, [np.ones_like(u), soc_boost, np.ones_like(u),
                           np.clip(1.0 - d_current * d_since_h / rated, 0.0, 1.0)])
    voltage = voltage - SHORTED_CELL_DROP_V * (tt >= state.short_s)
    temp = temp + np.where(mode == 3, 0.8 * np.minimum(d_since_h, 1.0), 0.0)

    day = np.clip(((t - state.window_start_s) // 86_400).astype(np.int64), 0,
                  len(state.ohmic_noise) - 1)
    day_hour = np.minimum(day * 24, len(state.resistance_mohm) - 1)
    r_meas = state.resistance_mohm[day_hour] * (1.0 + OHMIC_NOISE * state.ohmic_noise[day])
    g_meas = 1000.0 / r_meas * (1.0 + CONDUCTANCE_NOISE * rng.standard_normal((n_t, n_u)))

    voltage = voltage + VOLTAGE_NOISE_V * rng.standard_normal((n_t, n_u))
    temp = temp + TEMPERATURE_NOISE_C * rng.standard_normal((n_t, n_u))
    current = current + (CURRENT_NOISE_A + 0.01 * np.abs(current)) * rng.standard_normal((n_t, n_u))

    stuck = np.stack([intervals.inside(t, *s) for s in state.stuck], axis=1)
    if stuck.any():
        last_good = np.maximum.accumulate(np.where(stuck, 0, np.arange(n_t)[:, None]), axis=0)
        cols = np.arange(n_u)[None, :]
        voltage, temp = voltage[last_good, cols], temp[last_good, cols]

    gap = np.stack([intervals.inside(t, *g) for g in state.monitor_gaps], axis=1)
    gap = gap[:, state.string_idx]
    present = (tt >= state.install_s) & (tt < state.removed_s) & ~gap
    ti, ui = np.nonzero(present)
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
        "soc_pct": (100.0 * soc[ti, ui]).astype(np.float32),
        "mode": pl.Series(MODES).gather(mode[ti, ui]),
    })
    return conform(frame, "telemetry")


def _event_value(t: np.ndarray, spec: tuple) -> np.ndarray:
    """Value attached to the interval containing t (0 outside), e.g. an event's current."""
    starts, ends, values = spec
    if len(starts) == 0:
        return np.zeros(len(t))
    i = np.maximum(np.searchsorted(starts, t, side="right") - 1, 0)
    return np.where((t >= starts[i]) & (t < ends[i]), values[i], 0.0)
