"""The observed window's event and truth tables, built from the simulated unit histories."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from simulator import operations
from simulator import physics as ph
from simulator.environment import DAY_S, SiteEnvironment
from simulator.schema import FAILURE_MODES, conform, empty
from simulator.streams import stream

OHMIC_READING_ERROR = 0.03  # hand-held ohmic testers repeat within a few percent
OHMIC_EVERY_DAYS = 91.3  # quarterly ohmic readings (IEEE 1188)


@dataclass
class SiteTables:
    batteries: pl.DataFrame
    discharge_events: pl.DataFrame
    discharge_curves: pl.DataFrame
    maintenance_events: pl.DataFrame
    battery_truth: pl.DataFrame
    modes: list[dict]


def _ts(seconds: np.ndarray) -> pl.Series:
    return pl.Series((np.asarray(seconds) * 1e6).astype(np.int64)).cast(pl.Datetime("us", "UTC"))


def build_tables(site_id, strings, generations, schedule: operations.Schedule,
                 env: SiteEnvironment, window, seed: int, p: ph.PhysicsParams) -> SiteTables:
    w0, w1 = window.bounds_s
    rows = pl.concat([g[2] for g in generations])
    removed = np.concatenate([g[4] for g in generations])
    removed_date = pl.Series(
        [None if not np.isfinite(t) else int(t // DAY_S) for t in removed], dtype=pl.Int32
    ).cast(pl.Date)
    batteries = rows.with_columns(removed_date=removed_date)
    ids = batteries["battery_id"].to_numpy()
    string_of = np.concatenate([g[1].string_idx for g in generations])
    install = np.concatenate([g[1].install_s for g in generations])
    rated = np.concatenate([g[1].rated_ah for g in generations])
    results = [g[3] for g in generations]
    capacity = np.concatenate([r.capacity_ah for r in results], axis=1)
    resistance = np.concatenate([r.resistance_mohm for r in results], axis=1)
    dod = np.concatenate([r.discharges.dod for r in results], axis=1)

    d = schedule.discharges
    at = d.start_s[:, None]
    in_service = (at >= install) & (at < removed) & (string_of == d.string_idx[:, None])
    depth = np.nanmax(np.where(in_service, dod, np.nan), axis=1, initial=0.0)
    # the string's discharge: the shortest any generation's blocks allowed (the later ones
    # were simulated against the earlier ones' limits)
    ah = np.nan_to_num(np.nanmin(np.stack([r.discharges.ah for r in results]), axis=0,
                                 initial=np.inf), posinf=0.0)
    ah = np.where(in_service.any(axis=1), ah, 0.0)
    hours = ah / d.current_a
    load_lost = (ah > 0) & (ah < d.current_a * d.duration_s / 3600.0 * (1 - 1e-9))
    string_rated = np.array([rated[string_of == k][0] if (string_of == k).any() else np.nan
                             for k in range(len(strings))])
    modes = operations.mode_intervals(schedule, hours, ah, string_rated, len(strings), p)

    events, curves = _discharges(site_id, strings, schedule, env, in_service, depth, ah, hours,
                                 load_lost, capacity, resistance, rated, ids, w0, w1, p)
    maintenance = _maintenance(site_id, strings, generations, schedule, ids, string_of, install,
                               removed, resistance, w0, w1, seed, p.measurement_noise_scale)
    truth = _truth(site_id, ids, install, removed, rated, capacity, results, w0, w1)
    return SiteTables(conform(batteries, "batteries"), events, curves, maintenance, truth, modes)


def _discharges(site_id, strings, schedule, env, in_service, depth, ah, hours, load_lost,
                capacity, resistance, rated, ids, w0, w1, p):
    """One row per outage per string, and the minute-by-minute block voltages."""
    d = schedule.discharges
    o_start, o_end = env.outages
    events, curves = [], []
    pick = np.nonzero((schedule.kind != operations.CAPACITY_TEST) & (d.start_s >= w0)
                      & (d.start_s < w1) & in_service.any(axis=1))[0]
    for k in pick:
        string_id, system_id, _, _ = strings[d.string_idx[k]]
        on = np.nonzero(in_service[k])[0]
        hour = min(int((d.start_s[k] - w0) // 3600), len(capacity) - 1)
        cap, r_ohm = capacity[hour, on], resistance[hour, on] * 1e-3
        minutes = np.arange(int(np.ceil(hours[k] * 60)) + 1) * 60.0
        minutes = np.minimum(minutes, hours[k] * 3600.0)[:, None]
        drawn = d.current_a[k] * minutes / 3600.0
        volts = ph.discharge_voltage(drawn, cap, d.current_a[k], r_ohm, rated[on], p)
        event_id = f"{string_id}-E{schedule.outage_idx[k]:04d}"
        low = int(np.argmin(volts[-1]))
        o = schedule.outage_idx[k]
        events.append({
            "event_id": event_id, "site_id": site_id, "system_id": system_id,
            "string_id": string_id, "start_ts": o_start[o], "end_ts": o_end[o],
            "outage_minutes": (o_end[o] - o_start[o]) / 60.0,
            "generator_started": bool(schedule.kind[k] == operations.OUTAGE_COVERED),
            "depth_of_discharge": float(depth[k]), "ah_drawn": float(ah[k]),
            "runtime_minutes": float(hours[k] * 60.0), "load_lost": bool(load_lost[k]),
            "min_block_voltage_v": float(volts[-1, low]), "min_block_battery_id": ids[on[low]],
        })
        curves.append(pl.DataFrame({
            "event_id": event_id,
            "battery_id": np.tile(ids[on], len(minutes)),
            "ts": _ts(np.repeat(d.start_s[k] + minutes[:, 0], len(on))),
            "voltage_v": volts.ravel().astype(np.float32),
            "current_a": np.float32(-d.current_a[k]),
        }))
    if not events:
        return empty("discharge_events"), empty("discharge_curves")
    ev = pl.DataFrame(events).with_columns(start_ts=_ts([e["start_ts"] for e in events]),
                                           end_ts=_ts([e["end_ts"] for e in events]))
    return conform(ev, "discharge_events"), conform(pl.concat(curves), "discharge_curves")


def _maintenance(site_id, strings, generations, schedule, ids, string_of, install, removed,
                 resistance, w0, w1, seed, noise_scale):
    """Quarterly ohmic readings, capacity-test results and replacements."""
    rng = stream(seed, site_id, "maintenance")
    out = []
    phase = rng.uniform(0, OHMIC_EVERY_DAYS)
    for day in np.arange(phase, (w1 - w0) / DAY_S, OHMIC_EVERY_DAYS):
        t = w0 + np.floor(day) * DAY_S + 3 * 3600.0  # 10:00 local
        on = np.nonzero((t >= install) & (t < removed))[0]
        r = resistance[int((t - w0) // 3600), on] * (
            1 + OHMIC_READING_ERROR * noise_scale * rng.standard_normal(len(on)))
        out.append(_rows(t, site_id, strings, string_of[on], ids[on], "ohmic_reading",
                         resistance=r))
    offset = 0
    for _, units, _, _, removed_g, reasons, (tests, measured) in generations:
        n = len(units)
        gid = ids[offset:offset + n]
        for row, k in enumerate(tests):
            t = schedule.discharges.start_s[k]
            if t < w0:
                continue
            on = np.nonzero((t >= units.install_s) & (t < removed_g)
                            & (units.string_idx == schedule.discharges.string_idx[k]))[0]
            out.append(_rows(t, site_id, strings, units.string_idx[on], gid[on],
                             "capacity_test", capacity=measured[row, on],
                             test_rate_hours=operations.TEST_RATE_HOURS))
        for i in np.nonzero((removed_g >= w0) & (removed_g < w1))[0]:
            successor = ids[np.nonzero((install == removed_g[i]) & (string_of == units.string_idx[
                i]))[0]]
            successor = [s for s in successor if s.startswith(gid[i].split("-R")[0])]
            out.append(_rows(removed_g[i], site_id, strings, units.string_idx[[i]], gid[[i]],
                             "replacement", new_id=successor[0] if successor else None,
                             reason=reasons[i]))
        offset += n
    frame = pl.concat([f for f in out if f.height], how="diagonal_relaxed") if out else None
    if frame is None or frame.height == 0:
        return empty("maintenance_events")
    return conform(frame.sort("ts", "battery_id"), "maintenance_events")


def _rows(t, site_id, strings, string_idx, battery_ids, kind, resistance=None, capacity=None,
          new_id=None, reason=None, test_rate_hours=None) -> pl.DataFrame:
    n = len(battery_ids)
    return pl.DataFrame({
        "ts": _ts(np.full(n, t)),
        "site_id": [site_id] * n,
        "string_id": [strings[k][0] for k in string_idx],
        "battery_id": list(battery_ids),
        "event_type": [kind] * n,
        "resistance_mohm": pl.Series(resistance if resistance is not None else [None] * n,
                                     dtype=pl.Float64),
        "measured_capacity_ah": pl.Series(capacity if capacity is not None else [None] * n,
                                          dtype=pl.Float64),
        "test_rate_hours": pl.Series([test_rate_hours] * n, dtype=pl.Float64),
        "new_battery_id": pl.Series([new_id] * n, dtype=pl.String),
        "reason": pl.Series([reason] * n, dtype=pl.String),
    })


def _truth(site_id, ids, install, removed, rated, capacity, results, w0, w1) -> pl.DataFrame:
    """Daily hidden truth for every unit in service that day (labels and evaluation only)."""
    days = w0 + DAY_S * np.arange(round((w1 - w0) / DAY_S))
    hour = ((days - w0) // 3600).astype(int)
    cross = np.concatenate([r.cross_s for r in results])
    end_mode = np.concatenate([r.end_mode for r in results])
    on = (days[:, None] >= install) & (days[:, None] < removed)
    di, ui = np.nonzero(on)
    cap = capacity[hour[di], ui]
    return conform(pl.DataFrame({
        "battery_id": ids[ui],
        "site_id": site_id,
        "ts": _ts(days[di]),
        "capacity_ah": cap,
        "soh_pct": 100.0 * cap / rated[ui],
        "true_rul_days": np.maximum(cross[ui] - days[di], 0.0) / DAY_S,
        "failure_mode": np.asarray(FAILURE_MODES)[end_mode[ui]],
    }), "battery_truth")
