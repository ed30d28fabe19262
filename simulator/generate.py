"""Fleet history generation: the one entry point the CLI, the Dagster assets and the
benchmarks call. Sites are independent, so each is simulated (and written) on its own."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from simulator import ageing, intervals, operations
from simulator import physics as ph
from simulator.config import Fleet, Site
from simulator.environment import DAY_S, YEAR_S, RoomSampler, SiteEnvironment
from simulator.fleet import Slot, day_s, draw_units, fleet_tables, initial_slots, string_ids
from simulator.practice import (
    Practice,
    capacity_tests,
    removals,
    removed_block_limited_a_discharge,
)
from simulator.streams import stream
from simulator.tables import SiteTables, build_tables
from simulator.telemetry import (
    CURRENT_GAIN_SIGMA,
    CURRENT_OFFSET_SIGMA_A,
    MONITOR_OUTAGE_MEDIAN_H,
    MONITOR_OUTAGES_PER_YEAR,
    OHMIC_OUTLIER_RANGE,
    OHMIC_OUTLIER_SHARE,
    STUCK_MEDIAN_H,
    STUCK_PER_YEAR,
    FleetState,
    chunk_frame,
    monitor_start_soc,
)
from simulator.thresholds import load_thresholds

__all__ = ["SiteHistory", "Window", "fleet_tables", "simulate_site"]

FUTURE_YEARS = 60  # horizon drawn beyond the window so every unit's end of life is known
TELEMETRY_CHUNK_ROWS = 1_500_000  # rows per telemetry chunk: bounded memory at any step


@dataclass(frozen=True)
class Window:
    """The observed history: `days` days from `start` (UTC midnight), sampled every `step_s`."""

    start: dt.date
    days: int
    step_s: int = 3600

    def __post_init__(self) -> None:
        if self.days <= 0:
            raise ValueError(f"days must be positive, got {self.days}")
        if not 1 <= self.step_s <= 86_400 or 86_400 % self.step_s:
            raise ValueError(f"step must divide one day (1 s .. 1 d), got {self.step_s} s")

    @property
    def bounds_s(self) -> tuple[float, float]:
        t0 = day_s(self.start)
        return t0, t0 + self.days * DAY_S

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days)


@dataclass
class SiteHistory:
    """Everything simulated for one site. Telemetry is produced lazily, chunk by chunk, so a
    60-second history never has to fit in memory."""

    site_id: str
    environment: pl.DataFrame
    batteries: pl.DataFrame
    discharge_events: pl.DataFrame
    discharge_curves: pl.DataFrame
    maintenance_events: pl.DataFrame
    battery_truth: pl.DataFrame
    _state: FleetState = field(repr=False)
    _grid_s: np.ndarray = field(repr=False)
    _block_c: np.ndarray = field(repr=False)  # room temperature through the block's lag
    _seed: int = field(repr=False)
    _params: ph.PhysicsParams = field(repr=False)
    _days: int = field(repr=False, default=1)
    _units: ageing.Units | None = field(repr=False, default=None)  # every generation's units
    _env: SiteEnvironment | None = field(repr=False, default=None)
    _schedule: operations.Schedule | None = field(repr=False, default=None)
    _loads_a: np.ndarray | None = field(repr=False, default=None)  # per string: the DC load
    _strings: list | None = field(repr=False, default=None)  # (string_id, system_id, no, date)

    def telemetry_chunks(self) -> Iterator[pl.DataFrame]:
        """Telemetry in time order, in chunks of whole days of about 1.5 M rows."""
        n_units = max(len(self._state.install_s), 1)
        steps_per_day = round(len(self._grid_s) / self._days)
        days = max(1, TELEMETRY_CHUNK_ROWS // (n_units * steps_per_day))
        size = days * steps_per_day
        for k, lo in enumerate(range(0, len(self._grid_s), size)):
            rng = stream(self._seed, self.site_id, "telemetry", k)
            yield chunk_frame(self._grid_s[lo:lo + size], self._block_c[lo:lo + size],
                              self._state, self._params, rng)

    def telemetry(self) -> pl.DataFrame:
        """All telemetry at once: for small fleets and tests."""
        return pl.concat(list(self.telemetry_chunks()))


def simulate_site(
    fleet: Fleet, site_id: str, window: Window, seed: int,
    params: ph.PhysicsParams | None = None,
) -> SiteHistory:
    """Simulate one site's environment and every unit on it, from the oldest install date to
    the end of life of the last unit, and return the observed window's tables."""
    p = params or ph.PhysicsParams()
    site = _site(fleet, site_id)
    cfg = fleet.settings(site)
    w0, w1 = window.bounds_s
    strings = string_ids(site)
    systems = {f"{site.code}-{s.code}": s for s in site.systems}
    loads = np.array([systems[sys_id].load_a for _, sys_id, _, _ in strings])
    string_rated = np.array([fleet.model(systems[sys_id].battery_model).rated_capacity_ah
                             for _, sys_id, _, _ in strings])

    slots = initial_slots(fleet, site, window.end)
    if not slots:
        raise ValueError(f"site {site_id}: no battery is in service during the window")
    t_first = min(day_s(s.install) for s in slots) - 2 * DAY_S
    env = SiteEnvironment.draw(seed, site.code, fleet.regions[site.region], cfg, t_first,
                               w1 + FUTURE_YEARS * YEAR_S)
    schedule = operations.build_schedule(env, site, strings, loads, string_rated, seed, p)

    generations = []
    practice = Practice(cfg, load_thresholds(), p)
    # what the string's blocks simulated so far can deliver in each discharge: a replacement
    # shares its string with the blocks that remain, and the weakest one ends a discharge
    string_limit = np.full(len(schedule.discharges.start_s), np.inf)
    while slots:
        units, rows = draw_units(fleet, site, slots, seed, p)
        ids, gen = rows["battery_id"].to_list(), len(generations)

        def run(removed, resume=None, units=units, limit=string_limit) -> ageing.AgeingResult:
            return ageing.simulate_units(env, units, schedule.discharges, (w0, w1), p,
                                         removed_s=removed, string_limit_ah=limit,
                                         ohmic_alarm_ratio=practice.ohmic_alarm_ratio,
                                         resume=resume)

        result = run(None)
        removed_s, reasons, tests = removals(units, result, schedule, w1, seed, ids, gen,
                                             practice)
        if removed_block_limited_a_discharge(result, schedule, removed_s):
            # again with the removals known, so a replaced block leaves its string's discharges
            # (the decisions stay those of the first pass: they precede their own removal);
            # identical up to the first removal, so it resumes from there
            result = run(removed_s, result)
            tests = capacity_tests(units, result, schedule, w1, seed, ids, gen, p)
        string_limit = np.fmin(string_limit, result.discharges.ah)
        keep = removed_s > w0  # units gone before the window opens leave no trace in it
        if keep.any():
            generations.append(_subset(slots, units, rows, result, removed_s, reasons, tests,
                                       keep))
        slots = [
            Slot(_next_id(slot.battery_id), slot.string_id, slot.string_idx, slot.position,
                 slot.model, _date(removed_s[i]))
            for i, slot in enumerate(slots) if np.isfinite(removed_s[i])
        ]

    tables: SiteTables = build_tables(site.code, strings, generations, schedule, env,
                                      window, seed, p)
    grid = w0 + window.step_s * np.arange(int(window.days * DAY_S // window.step_s))
    environment, block_c = _environment(env, site.code, grid, window.step_s, p)
    state = _fleet_state(site.code, generations, tables, strings, seed, w0, w1,
                         cfg.float_offset_v, p)
    all_units = ageing.Units(**{name: np.concatenate([getattr(g[1], name) for g in generations])
                                for name in vars(generations[0][1])})
    return SiteHistory(site.code, environment, tables.batteries, tables.discharge_events,
                       tables.discharge_curves, tables.maintenance_events, tables.battery_truth,
                       state, grid, block_c, seed, p, window.days, all_units, env, schedule,
                       loads, strings)


def _subset(slots, units, rows, result, removed_s, reasons, tests, keep):
    """The same generation restricted to the units in `keep`."""
    test_idx, measured = tests
    return ([s for s, k in zip(slots, keep) if k], units.subset(keep),
            rows.filter(pl.Series(keep)), result.subset(keep), removed_s[keep], reasons[keep],
            (test_idx, measured[:, keep]))


def _site(fleet: Fleet, site_id: str) -> Site:
    for site in fleet.sites:
        if site.code == site_id:
            return site
    raise ValueError(f"unknown site {site_id!r}")


def _date(t_s: float) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(t_s // DAY_S))


def _next_id(battery_id: str) -> str:
    """J07 -> J07-R1 -> J07-R2: the position keeps its code, each new unit its own id."""
    m = re.search(r"-R(\d+)$", battery_id)
    if m:
        return f"{battery_id[:m.start()]}-R{int(m.group(1)) + 1}"
    return f"{battery_id}-R1"


def _environment(env: SiteEnvironment, site_id: str, grid: np.ndarray, step_s: int,
                 p: ph.PhysicsParams):
    """The environment table at the output step, and the blocks' base temperature: the room
    seen through the blocks' own thermal lag (both lags warmed up over two days)."""
    warm = grid[0] - step_s * np.arange(int(2 * DAY_S // step_s), 0, -1)
    s = RoomSampler(env, step_s).sample(np.concatenate([warm, grid]))
    alpha = ph.lag_coefficient(step_s, p.block_thermal_tau_min * 60.0)
    from scipy.signal import lfilter  # lazy: importing scipy.signal takes ~2.5 s
    block = lfilter([alpha], [1.0, alpha - 1.0], s["room_c"], zi=[(1 - alpha) * s["room_c"][0]])[0]
    s = {k: v[len(warm):] for k, v in s.items()}
    frame = pl.DataFrame({
        "site_id": pl.repeat(site_id, len(grid), eager=True),
        "ts": pl.Series((grid * 1e6).astype(np.int64)).cast(pl.Datetime("us", "UTC")),
        "outdoor_temp_c": s["outdoor_c"].astype(np.float32),
        "room_temp_c": s["room_c"].astype(np.float32),
        "humidity_pct": s["humidity_pct"].astype(np.float32),
        "hvac_state": pl.Series(["normal", "degraded", "failed"]).gather(s["hvac_state"]),
        "grid_up": env.grid_up(grid),
    })
    return frame, block[len(warm):]


def _fleet_state(site_id, generations, tables: SiteTables, strings, seed, w0, w1,
                 charger_offset_v: float, p: ph.PhysicsParams) -> FleetState:
    units = [g[1] for g in generations]
    results = [g[3] for g in generations]

    def cat(attr):
        return np.concatenate([getattr(u, attr) for u in units])

    ids = tables.batteries["battery_id"]
    n = len(ids)
    rng = stream(seed, site_id, "monitor")
    gaps = []
    for _ in strings:
        s = intervals.poisson_starts(rng, w0, w1, MONITOR_OUTAGES_PER_YEAR)
        gaps.append(intervals.merge(s, s + 3600 * MONITOR_OUTAGE_MEDIAN_H * rng.lognormal(
            0, 0.8, len(s))))
    stuck = []
    for battery_id in ids.to_list():
        r = stream(seed, battery_id, "stuck")
        s = intervals.poisson_starts(r, w0, w1, STUCK_PER_YEAR)
        stuck.append(intervals.merge(s, s + 3600 * STUCK_MEDIAN_H * r.lognormal(0, 0.8, len(s))))
    n_days = round((w1 - w0) / DAY_S)
    string_idx = cat("string_idx")
    rated = cat("rated_ah")
    string_rated = np.array([rated[string_idx == k][0] if (string_idx == k).any() else 100.0
                             for k in range(len(strings))])
    sensors = stream(seed, site_id, "current_sensors")
    noise = p.measurement_noise_scale
    gain = noise * CURRENT_GAIN_SIGMA * sensors.standard_normal(len(strings))
    offset = noise * CURRENT_OFFSET_SIGMA_A * sensors.standard_normal(len(strings))
    ohmic = stream(seed, site_id, "ohmic")
    outlier = np.where(ohmic.uniform(size=(n_days, n)) < OHMIC_OUTLIER_SHARE,
                       ohmic.uniform(*OHMIC_OUTLIER_RANGE, (n_days, n)), 1.0)
    return FleetState(
        battery_id=ids, string_id=tables.batteries["string_id"], site_id=site_id,
        string_idx=string_idx, install_s=cat("install_s"),
        removed_s=np.concatenate([g[4] for g in generations]), rated_ah=rated,
        hotspot_c=cat("hotspot_c"), float_share_v=cat("float_v_offset") - charger_offset_v,
        charger_offset_v=charger_offset_v, wear_mode=cat("wear_mode"),
        short_s=np.concatenate([r.short_s for r in results]),
        runaway_s=np.concatenate([r.runaway_s for r in results]),
        window_start_s=w0,
        capacity_ah=np.concatenate([r.capacity_ah for r in results], axis=1),
        resistance_mohm=np.concatenate([r.resistance_mohm for r in results], axis=1),
        life_used=np.concatenate([r.life_used for r in results], axis=1),
        ohmic_noise=ohmic.standard_normal((n_days, n)), ohmic_outlier=outlier,
        string_rated_ah=string_rated, current_gain=gain, current_offset_a=offset,
        modes=tables.modes,
        monitor_start_pct=[monitor_start_soc(m, gain[k], string_rated[k], p)
                           for k, m in enumerate(tables.modes)],
        monitor_gaps=gaps, stuck=stuck,
    )
