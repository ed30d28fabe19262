"""Battery ageing over a unit's whole life, integrated on an hourly physics clock.

Life used `u` (1.0 = design end of life) grows by calendar ageing (Arrhenius in temperature,
float-voltage stress) integrated as rate x dt, plus one impulse of cycle damage per discharge.
Sudden failures come from per-unit hazard rates per hour: a unit fails when its cumulative
hazard passes its own Exp(1) threshold, which makes failure counts independent of the step.
The clock runs from each unit's install date until every unit has crossed 80 % of its rating,
so the true remaining life is known for every day of the observed window (nothing censored).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator import physics as ph
from simulator.discharges import DischargeLog, DischargeOutcome, Discharges
from simulator.environment import RoomSampler, SiteEnvironment

HOUR_S = 3600.0
YEAR_S = 365.25 * 86_400.0
CHUNK_CELLS = 4_000_000  # steps x units per integration chunk: bounded memory at any clock
MAX_YEARS = 60  # every unit crosses 80 % long before this; exceeding it is a bug
RUNAWAY_COLLAPSE_S = 36 * HOUR_S  # runaway escalates over hours, then the block dries out
SHORT_CAPACITY_FACTOR = 5.0 / 6.0  # one dead cell of six (DOMAIN §3: ~2.1 V drop)
RUNAWAY_CAPACITY_FACTOR = 0.5

# Wear-mode codes (index into simulator.schema.FAILURE_MODES)
CORROSION, DRY_OUT, SULFATION, RUNAWAY, DEFECT, SHORT = range(6)


@dataclass
class Units:
    """Static, per-unit parameters (one array element per battery)."""

    string_idx: np.ndarray
    install_s: np.ndarray
    rated_ah: np.ndarray
    design_life_y: np.ndarray
    c0_ah: np.ndarray  # capacity when new (unit spread)
    r0_mohm: np.ndarray  # resistance when new (unit spread)
    life_factor: np.ndarray  # hidden: >1 lives longer
    r_growth: np.ndarray  # hidden: resistance rise at end of life, unit-specific
    hotspot_c: np.ndarray  # position in the room above the room mean
    float_v_offset: np.ndarray  # charger error + block-to-block float share
    wear_mode: np.ndarray
    e_short: np.ndarray  # Exp(1) hazard thresholds
    e_runaway: np.ndarray

    def __len__(self) -> int:
        return len(self.install_s)

    def subset(self, keep: np.ndarray) -> Units:
        return Units(**{name: value[keep] for name, value in vars(self).items()})


@dataclass
class AgeingResult:
    hours_s: np.ndarray  # hourly clock over the observed window
    capacity_ah: np.ndarray  # (n_hours, n_units)
    resistance_mohm: np.ndarray
    life_used: np.ndarray
    cross_s: np.ndarray  # when capacity first falls below 80 % of rating
    short_s: np.ndarray  # inf if it never happens (before crossing)
    runaway_s: np.ndarray
    end_mode: np.ndarray  # failure mode that ends the unit's life
    ohmic_alarm_s: np.ndarray  # resistance first over `ohmic_alarm_ratio` x new (inf: never)
    discharges: DischargeOutcome = field(repr=False, default=None)
    checkpoints: list[dict] = field(repr=False, default_factory=list)  # loop state per chunk

    def subset(self, keep: np.ndarray) -> AgeingResult:
        return AgeingResult(
            self.hours_s, self.capacity_ah[:, keep], self.resistance_mohm[:, keep],
            self.life_used[:, keep], self.cross_s[keep], self.short_s[keep],
            self.runaway_s[keep], self.end_mode[keep], self.ohmic_alarm_s[keep],
            self.discharges.subset(keep),
        )


def hourly_rate(temp_c, float_v, units: Units, p: ph.PhysicsParams) -> np.ndarray:
    """Life used per hour (calendar ageing): Arrhenius x float stress / the unit's design life."""
    life_h = units.design_life_y * units.life_factor * ph.HOURS_PER_YEAR
    return ph.arrhenius_factor(temp_c, p) * ph.float_stress_factor(float_v, temp_c, p) / life_h


def integrate_calendar(rate_per_h: np.ndarray, dt_h: float, carry: np.ndarray) -> np.ndarray:
    """Cumulative life used at the *end* of each step (left Riemann sum of rate x dt)."""
    return carry + np.cumsum(rate_per_h * dt_h, axis=0)


def first_crossing(values: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Index of the first row where values >= threshold per column, -1 if none."""
    hit = values >= threshold
    idx = np.argmax(hit, axis=0)
    return np.where(hit.any(axis=0), idx, -1)


def simulate_units(
    env: SiteEnvironment,
    units: Units,
    discharges: Discharges,
    window_s: tuple[float, float],
    p: ph.PhysicsParams,
    clock_s: float = HOUR_S,
    stop_s: float | None = None,
    removed_s: np.ndarray | None = None,
    string_limit_ah: np.ndarray | None = None,
    ohmic_alarm_ratio: float = np.inf,
    resume: AgeingResult | None = None,
) -> AgeingResult:
    """Integrate every unit from its install until all have crossed end of life (or until
    `stop_s`), on a clock of `clock_s` seconds; states are kept for the window only.

    `removed_s` (per unit) takes replaced units out of their string's discharges;
    `string_limit_ah` (per discharge) is what the string's other, already simulated blocks
    could deliver, so a new block is limited by the weakest block it shares the string with.
    `ohmic_alarm_ratio` is the resistance over the unit's new value that a site acts on.
    `resume`, an earlier run of the same units that differs only from the first removal on,
    is continued from its last checkpoint before that removal instead of from install."""
    n = len(units)
    t_begin = np.floor(units.install_s.min() / clock_s) * clock_s
    w0, w1 = window_s
    n_window = round((w1 - w0) / clock_s)
    chunk = max(1, min(int(YEAR_S // clock_s), CHUNK_CELLS // max(n, 1)))
    dt_h = clock_s / HOUR_S
    win_u = np.full((n_window, n), np.nan)
    life_used, damage = np.zeros(n), np.zeros(n)
    hazard_short, hazard_runaway = np.zeros(n), np.zeros(n)
    cross_s, ohmic_s = np.full(n, np.inf), np.full(n, np.inf)
    # wear at which the resistance reaches the alarm ratio (R = R0 (1 + g fade^k), monotone)
    with np.errstate(divide="ignore"):
        fade_alarm = ((ohmic_alarm_ratio - 1.0) / units.r_growth) ** (
            1.0 / p.resistance_wear_exponent)
    u_alarm = ph.wear_for_fade(fade_alarm, p) if np.isfinite(ohmic_alarm_ratio) else np.full(
        n, np.inf)
    short_s, runaway_s = np.full(n, np.inf), np.full(n, np.inf)
    events = DischargeLog(discharges, n, removed_s, string_limit_ah)
    sampler = RoomSampler(env, clock_s)
    cap_eol = p.eol_capacity_fraction * units.rated_ah
    u_eol_state = [_wear_at_capacity(cap_eol / (units.c0_ah * factor), p)
                   for factor in (1.0, SHORT_CAPACITY_FACTOR, RUNAWAY_CAPACITY_FACTOR)]
    dry = units.wear_mode == DRY_OUT

    t_chunk = t_begin
    checkpoints: list[dict] = []
    if resume is not None and removed_s is not None and resume.checkpoints:
        first = float(np.min(removed_s))
        state = [c for c in resume.checkpoints if c["t_chunk"] <= first][-1]
        t_chunk = state["t_chunk"]
        life_used, damage = state["life_used"].copy(), state["damage"].copy()
        hazard_short, hazard_runaway = state["hazard_short"].copy(), state["hazard_runaway"].copy()
        cross_s, ohmic_s = state["cross_s"].copy(), state["ohmic_s"].copy()
        short_s, runaway_s = state["short_s"].copy(), state["runaway_s"].copy()
        sampler._state = None if state["sampler"] is None else state["sampler"].copy()
        win_u = resume.life_used.copy()
        events.restore(resume.discharges, t_chunk)
        checkpoints = [c for c in resume.checkpoints if c["t_chunk"] < t_chunk]
    while t_chunk < w1 or (np.isinf(cross_s).any() and (stop_s is None or t_chunk < stop_s)):
        if t_chunk - t_begin > MAX_YEARS * YEAR_S:
            raise RuntimeError("units did not reach end of life within 60 years: check physics")
        checkpoints.append({
            "t_chunk": t_chunk, "life_used": life_used.copy(), "damage": damage.copy(),
            "hazard_short": hazard_short.copy(), "hazard_runaway": hazard_runaway.copy(),
            "cross_s": cross_s.copy(), "ohmic_s": ohmic_s.copy(), "short_s": short_s.copy(),
            "runaway_s": runaway_s.copy(),
            "sampler": None if sampler._state is None else sampler._state.copy()})
        t = t_chunk + clock_s * np.arange(chunk)
        room = sampler.sample(t)["room_c"]
        temp = room[:, None] + units.hotspot_c[None, :]
        float_v = ph.float_setpoint(room, p)[:, None] + units.float_v_offset[None, :]
        active = t[:, None] >= units.install_s[None, :]
        rate = np.where(active, hourly_rate(temp, float_v, units, p), 0.0)
        u_cal = integrate_calendar(rate, dt_h, life_used - damage)

        # cycle damage: impulses at each discharge, in time order, sized by capacity then
        step_damage = np.zeros((chunk, n))
        chunk_damage = np.zeros(n)
        for k, i in events.in_range(t[0], t[-1] + clock_s, clock_s):
            u_now = u_cal[i] + damage + chunk_damage
            cap = capacity_at(units, u_now, t[i], short_s, runaway_s, p)
            res = resistance_at(units, u_now, t[i], short_s, runaway_s, p)
            hit = events.apply(k, cap, res, units, p)
            step_damage[i] += hit
            chunk_damage += hit
        u = u_cal + damage + np.cumsum(step_damage, axis=0)

        # sudden failures: hazard rate (per hour) x step; fail when past the unit's threshold
        u_act = np.where(active, u, 0.0)
        lam_short = p.short_rate_per_year * (1 + p.short_wear_gain * u_act**2)
        # runaway feeds on the heat of the float current, which doubles per ~10 degC and per
        # ~0.6 V over the set point (DOMAIN §8): the hazard follows its square (heat ~ I V)
        i_ratio = ph.float_current(1.0, temp, float_v, p) / (p.float_current_ma_per_ah * 1e-3)
        lam_run = (p.runaway_rate_per_year * i_ratio**2
                   * np.where(dry, p.runaway_dryout_gain, 1.0) * (1 + 2 * u_act))
        per_step = dt_h / ph.HOURS_PER_YEAR
        h_short = hazard_short + np.cumsum(np.where(active, lam_short * per_step, 0.0), axis=0)
        h_run = hazard_runaway + np.cumsum(np.where(active, lam_run * per_step, 0.0), axis=0)
        for hazard, threshold, when in ((h_short, units.e_short, short_s),
                                        (h_run, units.e_runaway, runaway_s)):
            idx = first_crossing(hazard, threshold)
            new = (idx >= 0) & np.isinf(when)
            when[new] = t[idx[new]]

        # capacity <= 80 % of rating, as the wear that takes it there in each failure state
        # (cheaper than evaluating the capacity on every cell; the same crossing)
        u_eol = np.where(t[:, None] >= runaway_s + RUNAWAY_COLLAPSE_S, u_eol_state[2],
                         np.where(t[:, None] >= short_s, u_eol_state[1], u_eol_state[0]))
        idx = first_crossing(u, u_eol)
        new = (idx >= 0) & np.isinf(cross_s) & (t[np.maximum(idx, 0)] >= units.install_s)
        cross_s[new] = t[idx[new]]
        idx = first_crossing(np.where(active, u, 0.0), u_alarm[None, :])
        new = (idx >= 0) & np.isinf(ohmic_s)
        ohmic_s[new] = t[idx[new]]

        lo = round((t[0] - w0) / clock_s)
        a, b = max(lo, 0), min(lo + chunk, n_window)
        if b > a:
            win_u[a:b] = np.where(active, u, np.nan)[a - lo:b - lo]
        life_used, damage = u[-1], damage + chunk_damage
        hazard_short, hazard_runaway = h_short[-1], h_run[-1]
        t_chunk = t[-1] + clock_s

    steps = w0 + clock_s * np.arange(n_window)
    capacity = capacity_at(units, np.nan_to_num(win_u), steps[:, None], short_s, runaway_s, p)
    capacity = np.where(np.isnan(win_u), np.nan, capacity)
    resistance = resistance_at(units, win_u, steps[:, None], short_s, runaway_s, p)
    # A short or runaway after end of life still happens to a block left in service (state,
    # telemetry and removal all see it); only one before the crossing ends the unit's life.
    short_first = (short_s <= cross_s) & (short_s <= runaway_s)
    end_mode = np.select([short_first, runaway_s <= cross_s], [SHORT, RUNAWAY], units.wear_mode)
    return AgeingResult(steps, capacity, resistance, win_u, cross_s, short_s, runaway_s,
                        end_mode, ohmic_s, events.outcome(), checkpoints)


def _wear_at_capacity(fraction: np.ndarray, p: ph.PhysicsParams) -> np.ndarray:
    """Life used at which `capacity_fraction` falls to `fraction` (0 if it already has; inf if
    it never does, below the floor)."""
    fade = (1.0 - fraction) / (1.0 - p.eol_capacity_fraction)
    u = ph.wear_for_fade(fade, p)
    return np.where(fraction <= ph.MIN_CAPACITY_FRACTION, np.inf, u)


def capacity_at(units: Units, u, t, short_s, runaway_s, p: ph.PhysicsParams) -> np.ndarray:
    cap = units.c0_ah * ph.capacity_fraction(u, p)
    cap = np.where(t >= short_s, cap * SHORT_CAPACITY_FACTOR, cap)
    return np.where(t >= runaway_s + RUNAWAY_COLLAPSE_S, cap * RUNAWAY_CAPACITY_FACTOR, cap)


def resistance_at(units: Units, u, t, short_s, runaway_s, p: ph.PhysicsParams) -> np.ndarray:
    """Resistance over baseline follows wear through a unit-specific gain (a noisy link to
    capacity, as in the field) and jumps in the two weeks before a short (DOMAIN §3)."""
    r = units.r0_mohm * (1.0 + units.r_growth * ph.fade_shape(u, p) ** p.resistance_wear_exponent)
    ramp = np.clip(1.0 - (short_s - t) / (14 * 86400.0), 0.0, 1.0)
    return r * (1.0 + 0.35 * ramp) * np.where(t >= runaway_s, 1.3, 1.0)
