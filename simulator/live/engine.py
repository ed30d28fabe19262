"""One site carried on from its history, a tick at a time, with the history's physics: the
room through its thermal lag (`RoomSampler`'s first-order response), calendar ageing
(`ageing.hourly_rate`), discharges ended by the weakest block (`discharges.string_discharge`),
cycle damage, capacity and resistance from wear (`ageing.capacity_at` / `resistance_at`), and
every reading synthesised by the same `telemetry.chunk_frame` as the history's telemetry.

What the live run adds are scenario effects (`Effects`) an operator applies while it runs.
Sudden failures keep the times the history drew for each unit; the runaway scenario adds one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from simulator import ageing
from simulator import physics as ph
from simulator.discharges import string_discharge
from simulator.environment import DAY_S, ROOM_TAU_S
from simulator.live.seed import LiveSeed
from simulator.schema import HVAC_STATES, conform
from simulator.streams import stream
from simulator.telemetry import (
    OHMIC_OUTLIER_RANGE,
    OHMIC_OUTLIER_SHARE,
    RUNAWAY_RISE_C,
    FleetState,
    chunk_frame,
    monitor_start_soc,
)

# A data-centre chiller is sized for the site's design dry-bulb (ASHRAE 0.4 % for Bangkok is
# ~36 degC); above it cooling capacity falls short and the room drifts up as with a degraded unit.
HVAC_DESIGN_OUTDOOR_C = 36.0
# With cooling lost the room climbs about 2 degC/h past 40 degC (DOMAIN §2): the UPS/rectifier
# losses and the IT heat stay in a sealed room whatever the weather, until the walls shed them
# near 45 degC; 10 h is that approach's time constant (22 K / 10 h = 2.2 degC/h at first).
HVAC_FAILURE_ROOM_C = 45.0
HVAC_FAILURE_TAU_S = 10 * 3600.0
# The runaway scenario: a block escalating past 60 degC within about two hours (DOMAIN §3:
# runaway is self-accelerating once the float current heats the block faster than it sheds heat)
SCENARIO_RUNAWAY_RAMP_S = 2 * 3600.0
SCENARIO_RUNAWAY_RISE_C = 45.0
NO_GAPS = (np.zeros(0), np.zeros(0))


@dataclass
class Effects:
    """What the active scenarios and offsets do to one site at this tick."""

    n_units: int
    n_strings: int
    hvac_failed: bool = False
    heat_wave_c: float = 0.0  # outdoor temperature offset
    room_offset_c: float = 0.0
    unit_heat_c: np.ndarray = None  # extra block temperature per unit (local cooling loss)
    voltage_offset_v: np.ndarray = None  # charger set-point offset per block, per unit
    discharge_rate: np.ndarray = None  # load multiplier per string while on battery
    outage: np.ndarray = None  # per string: forced onto battery now
    outage_end_s: np.ndarray = None  # per string: when the forced outage is due to end
    accel: np.ndarray = None  # ageing-rate multiplier per unit
    runaway_start_s: np.ndarray = None  # per unit: runaway scenario start (inf: none)

    def __post_init__(self) -> None:
        n, k = self.n_units, self.n_strings
        defaults = {"unit_heat_c": np.zeros(n), "voltage_offset_v": np.zeros(n),
                    "discharge_rate": np.ones(k), "outage": np.zeros(k, bool),
                    "outage_end_s": np.full(k, np.inf), "accel": np.ones(n),
                    "runaway_start_s": np.full(n, np.inf)}
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)


@dataclass
class _OpenDischarge:
    start_s: float
    amps: float
    wanted_end_s: float  # power back (or the scenario's end)
    cutoff_s: float  # when the weakest block reaches 1.75 V/cell at this load
    forced: bool
    outage: tuple[float, float]  # the grid outage (or scenario window) behind it
    generator_started: bool
    left_deficit: float  # what an interrupted boost had not yet put back

    @property
    def end_s(self) -> float:
        return min(self.wanted_end_s, self.cutoff_s)


@dataclass
class LiveSite:
    seed: LiveSeed
    t_s: float = field(init=False)
    room_c: float = field(init=False)
    block_c: float = field(init=False)
    life_used: np.ndarray = field(init=False)
    runaway_s: np.ndarray = field(init=False)
    modes: list[dict] = field(init=False)
    anchors: list[np.ndarray] = field(init=False)
    open: dict[int, _OpenDischarge] = field(init=False, default_factory=dict)
    next_outage: int = 0
    events: int = 0
    exhausted: dict[int, float] = field(default_factory=dict)  # string: until power is back

    def __post_init__(self) -> None:
        s = self.seed
        self.t_s = s.t_end_s - s.step_s  # the last history step
        self.room_c, self.block_c = s.room_c, s.block_c
        self.life_used = s.life_used.copy()
        self.runaway_s = s.runaway_s.copy()
        self.modes = [{k: tuple(np.array(a, float) for a in v) for k, v in m.items()}
                      for m in s.modes]
        self.anchors = [a.copy() for a in s.monitor_start_pct]

    @property
    def n_units(self) -> int:
        return len(self.seed.battery_id)

    def effects(self) -> Effects:
        return Effects(self.n_units, len(self.seed.string_ids))

    def step(self, t_new: float, fx: Effects) -> dict[str, pl.DataFrame]:
        """Advance to `t_new` and return the readings there: telemetry, environment and the
        discharge events that ended in this step."""
        s, p = self.seed, self.seed.params
        dt = max(t_new - self.t_s, 1e-6)
        t = np.array([t_new])
        outdoor, rh = s.env.outdoor(t)
        outdoor = outdoor + fx.heat_wave_c
        hvac = s.env.hvac_state(t)
        if fx.heat_wave_c > 0:
            hvac = np.where(outdoor > HVAC_DESIGN_OUTDOOR_C, np.maximum(hvac, 1), hvac)
        if fx.hvac_failed:
            hvac = np.full_like(hvac, 2)
        target = float(s.env.room_target(t, outdoor, hvac)[0])
        if fx.hvac_failed:
            target = max(target, HVAC_FAILURE_ROOM_C)
        target += fx.room_offset_c
        tau = HVAC_FAILURE_TAU_S if fx.hvac_failed else ROOM_TAU_S
        self.room_c += ph.lag_coefficient(dt, tau) * (target - self.room_c)
        self.block_c += ph.lag_coefficient(dt, p.block_thermal_tau_min * 60.0) * (
            self.room_c - self.block_c)
        grid_up = bool(s.env.grid_up(t)[0]) and not fx.outage.all()

        u = s.units
        temp = self.block_c + u.hotspot_c + fx.unit_heat_c
        float_v = ph.float_setpoint(temp, p) + u.float_v_offset + fx.voltage_offset_v
        rate = ageing.hourly_rate(temp, float_v, u, p)
        self.life_used = self.life_used + rate * (dt / 3600.0) * fx.accel
        self.runaway_s = np.minimum(self.runaway_s, fx.runaway_start_s)
        events = self._discharges(t_new, fx)
        self.t_s = t_new
        frame = chunk_frame(t, np.array([self.block_c]), self._state(t_new, fx), p,
                            stream(s.seed, s.site_id, "live", int(t_new)))
        env = pl.DataFrame({
            "site_id": [s.site_id], "ts": [int(t_new * 1e6)], "outdoor_temp_c": outdoor,
            "room_temp_c": [self.room_c], "humidity_pct": rh,
            "hvac_state": [HVAC_STATES[int(hvac[0])]], "grid_up": [grid_up],
        }).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))
        return {"telemetry": frame, "environment": conform(env, "environment"),
                "discharge_events": events}

    # -- state as the readings need it -------------------------------------------------
    def capacity(self, t_s: float) -> np.ndarray:
        s = self.seed
        return ageing.capacity_at(s.units, self.life_used, t_s, s.short_s, self.runaway_s,
                                  s.params)

    def resistance(self, t_s: float) -> np.ndarray:
        s = self.seed
        return ageing.resistance_at(s.units, self.life_used, t_s, s.short_s, self.runaway_s,
                                    s.params)

    def _state(self, t_s: float, fx: Effects) -> FleetState:
        s, n = self.seed, self.n_units
        day = int(t_s // DAY_S)
        rng = stream(s.seed, s.site_id, "live-ohmic", day)  # one reading error per unit-day
        outlier = np.where(rng.uniform(size=(1, n)) < OHMIC_OUTLIER_SHARE,
                           rng.uniform(*OHMIC_OUTLIER_RANGE, (1, n)), 1.0)
        scenario = np.isfinite(fx.runaway_start_s) & (fx.runaway_start_s <= self.runaway_s)
        string_idx = s.units.string_idx
        return FleetState(
            battery_id=pl.Series(s.battery_id), string_id=pl.Series(s.string_id),
            site_id=s.site_id, string_idx=string_idx, install_s=s.units.install_s,
            removed_s=np.full(n, np.inf), rated_ah=s.units.rated_ah,
            hotspot_c=s.units.hotspot_c + fx.unit_heat_c, float_share_v=s.float_share_v,
            charger_offset_v=s.charger_offset_v + fx.voltage_offset_v,
            wear_mode=s.units.wear_mode, short_s=s.short_s, runaway_s=self.runaway_s,
            window_start_s=t_s, capacity_ah=self.capacity(t_s)[None, :],
            resistance_mohm=self.resistance(t_s)[None, :], life_used=self.life_used[None, :],
            ohmic_noise=rng.standard_normal((1, n)), ohmic_outlier=outlier,
            string_rated_ah=s.string_rated_ah, current_gain=s.current_gain,
            current_offset_a=s.current_offset_a, modes=self.modes,
            monitor_start_pct=self.anchors, monitor_gaps=[NO_GAPS] * len(s.string_ids),
            stuck=[NO_GAPS] * n,
            runaway_ramp_s=np.where(scenario, SCENARIO_RUNAWAY_RAMP_S,
                                    ageing.RUNAWAY_COLLAPSE_S),
            runaway_rise_c=np.where(scenario, SCENARIO_RUNAWAY_RISE_C, RUNAWAY_RISE_C),
        )

    # -- discharges -------------------------------------------------------------------
    def _discharges(self, t_new: float, fx: Effects) -> pl.DataFrame:
        """Close the discharges that end by `t_new` (cycle damage, boost, event row), then
        open those that start: natural outages from the history's schedule, forced ones."""
        s = self.seed
        rows = []
        for k, d in list(self.open.items()):
            if d.forced and not fx.outage[k]:
                d.wanted_end_s = min(d.wanted_end_s, t_new)  # scenario cleared: power back
            if d.end_s <= t_new:
                rows.append(self._close(k, d))
        starts, on_battery, strings = s.outages
        while self.next_outage < len(starts) and starts[self.next_outage] <= t_new:
            i = self.next_outage
            self.next_outage += 1
            k = int(strings[i])
            if k not in self.open:
                o_start, o_end = _outage_around(s.env.outages, starts[i])
                self._open(k, float(starts[i]), float(starts[i] + on_battery[i]), False,
                           (o_start, o_end), bool(on_battery[i] < o_end - o_start - 1.0), fx)
        for k in np.nonzero(fx.outage)[0]:
            if int(k) not in self.open and t_new >= self.exhausted.get(int(k), -np.inf):
                end = float(fx.outage_end_s[k])
                self._open(int(k), t_new, end, True, (t_new, end), False, fx)
        return conform(pl.DataFrame(rows, schema=_EVENT_SCHEMA, orient="row")
                       if rows else pl.DataFrame(schema=_EVENT_SCHEMA), "discharge_events")

    def _on_string(self, k: int) -> np.ndarray:
        return self.seed.units.string_idx == k

    def _open(self, k, start, wanted_end, forced, outage, generator, fx: Effects) -> None:
        s, p = self.seed, self.seed.params
        on = self._on_string(k)
        if not on.any():
            return
        m = self.modes[k]
        d_s, d_e, d_a = m["discharge"]
        start = max(start, float(d_e[-1]) if len(d_e) else start)  # never overlap the last
        amps = float(s.loads_a[k] * fx.discharge_rate[k])
        cap, res = self.capacity(start)[on], self.resistance(start)[on]
        wanted = amps * min(max(wanted_end - start, 0.0), 30 * DAY_S) / 3600.0
        ah, _, _ = string_discharge(cap, res, s.units.rated_ah[on], amps, wanted,
                                           np.inf, p)
        cutoff = start + ah / amps * 3600.0 if ah < wanted else np.inf
        b_s, b_e, deficit0 = m["boost"]
        left = 0.0
        if len(b_e) and b_e[-1] > start:  # a boost in progress stops here; its rest carries on
            left = float(ph.boost_deficit((start - b_s[-1]) / 3600.0, deficit0[-1], p))
            b_e = b_e.copy()
            b_e[-1] = max(start, b_s[-1])
        d = _OpenDischarge(start, amps, wanted_end, cutoff, forced, outage, generator, left)
        # the discharge with its planned end, and a boost placeholder the close fills in
        m["discharge"] = (np.append(d_s, start), np.append(d_e, d.end_s), np.append(d_a, amps))
        m["boost"] = (np.append(b_s, d.end_s), np.append(b_e, d.end_s), np.append(deficit0, 0.0))
        self.anchors[k] = monitor_start_soc(m, s.current_gain[k], s.string_rated_ah[k], p)
        self.open[k] = d

    def _close(self, k: int, d: _OpenDischarge) -> dict:
        s, p = self.seed, self.seed.params
        on = self._on_string(k)
        hours = (d.end_s - d.start_s) / 3600.0
        ah = d.amps * hours
        cap, res = self.capacity(d.start_s)[on], self.resistance(d.start_s)[on]
        reach = cap * ph.available_fraction(d.amps, s.units.rated_ah[on], p)
        dod = np.minimum(ah / np.maximum(reach, 1e-9), 1.0)
        self.life_used[on] += ph.cycle_damage(dod, p)
        deficit = d.left_deficit + ah / s.string_rated_ah[k]
        m = self.modes[k]
        (d_s, d_e, d_a), (b_s, b_e, deficit0) = m["discharge"], m["boost"]
        d_e, b_s, b_e, deficit0 = d_e.copy(), b_s.copy(), b_e.copy(), deficit0.copy()
        d_e[-1], b_s[-1] = d.end_s, d.end_s
        # a string that ran out waits, disconnected, for power before its charger refills it
        if d.cutoff_s < d.wanted_end_s:
            b_s[-1] = min(d.wanted_end_s, d.end_s + 30 * DAY_S)
            self.exhausted[k] = b_s[-1]
        b_e[-1] = b_s[-1] + 3600.0 * float(ph.boost_hours(deficit, p))
        deficit0[-1] = deficit
        m["discharge"], m["boost"] = (d_s, d_e, d_a), (b_s, b_e, deficit0)
        self.anchors[k] = monitor_start_soc(m, s.current_gain[k], s.string_rated_ah[k], p)
        volts = ph.discharge_voltage(ah, cap, d.amps, res * 1e-3, s.units.rated_ah[on], p)
        low = int(np.argmin(volts))
        del self.open[k]
        self.events += 1
        o_start, o_end = d.outage
        end = max(o_end, d.end_s)
        return {
            "event_id": f"{s.string_ids[k]}-L{self.events:05d}", "site_id": s.site_id,
            "system_id": s.system_ids[k], "string_id": s.string_ids[k],
            "start_ts": int(o_start * 1e6), "end_ts": int(end * 1e6),
            "outage_minutes": (end - o_start) / 60.0, "generator_started": d.generator_started,
            "depth_of_discharge": float(dod.max()), "ah_drawn": ah, "runtime_minutes": hours * 60,
            "load_lost": bool(d.cutoff_s < d.wanted_end_s),
            "min_block_voltage_v": float(volts[low]),
            "min_block_battery_id": str(s.battery_id[on][low]),
        }


_EVENT_SCHEMA = {
    "event_id": pl.String, "site_id": pl.String, "system_id": pl.String, "string_id": pl.String,
    "start_ts": pl.Int64, "end_ts": pl.Int64,  # microseconds; conform() makes them UTC times
    "outage_minutes": pl.Float64, "generator_started": pl.Boolean,
    "depth_of_discharge": pl.Float64, "ah_drawn": pl.Float64, "runtime_minutes": pl.Float64,
    "load_lost": pl.Boolean, "min_block_voltage_v": pl.Float64,
    "min_block_battery_id": pl.String,
}


def _outage_around(outages: tuple[np.ndarray, np.ndarray], t: float) -> tuple[float, float]:
    starts, ends = outages
    i = max(int(np.searchsorted(starts, t, side="right")) - 1, 0)
    return (float(starts[i]), float(ends[i])) if len(starts) else (t, t)

