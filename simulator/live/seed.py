"""The state a site's history leaves its batteries in, persisted so that the live run starts
from exactly there: every in-service unit's hidden parameters, wear, pending sudden failures,
room and block temperatures, and the strings' charge state (a boost in progress carries on).

Written by the history run (`rul generate` and the `site_history` asset) as
`lake/live_state/<site>.pkl`: a private format of this package (NumPy arrays and the site's
drawn environment), read back only by `simulator.live`.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from simulator import operations
from simulator import physics as ph
from simulator.ageing import Units
from simulator.atomic import atomic_path
from simulator.environment import SiteEnvironment

FORMAT_VERSION = 1


@dataclass
class LiveSeed:
    site_id: str
    seed: int
    t_end_s: float  # the history's window end: the live clock starts here
    step_s: int  # the history's output step (the first live tick spans it)
    params: ph.PhysicsParams
    env: SiteEnvironment
    battery_id: np.ndarray  # (n,) in service at t_end
    string_id: np.ndarray  # (n,)
    string_ids: list[str]  # per string of the site
    system_ids: list[str]  # per string
    units: Units  # hidden per-unit parameters
    life_used: np.ndarray  # wear at the last history hour
    damage: np.ndarray  # the cycle-damage part of it (calendar ageing adds on top)
    short_s: np.ndarray  # pending sudden failures drawn by the history (inf: none)
    runaway_s: np.ndarray
    float_share_v: np.ndarray
    charger_offset_v: float
    room_c: float  # room and block temperature at the last history step
    block_c: float
    loads_a: np.ndarray  # per string
    string_rated_ah: np.ndarray
    current_gain: np.ndarray
    current_offset_a: np.ndarray
    modes: list[dict]  # per string: discharges/boosts that started before t_end, equalizes
    monitor_start_pct: list[np.ndarray]
    outages: tuple[np.ndarray, np.ndarray, np.ndarray]  # natural discharges after t_end:
    # (start, seconds on battery, string index), from the site's drawn outage schedule


def live_seed(history) -> LiveSeed:
    """The end-of-history state of a `simulator.generate.SiteHistory`."""
    st, units = history._state, history._units
    step_s = int(history._days * 86_400 // len(history._grid_s))
    t_end = float(history._grid_s[0] + history._days * 86_400)
    keep = (st.install_s <= t_end) & (st.removed_s > t_end)
    last = np.nan_to_num(st.life_used[-1])
    modes, anchors = [], []
    for m, start_pct in zip(st.modes, st.monitor_start_pct):
        s, e, amps = m["discharge"]
        b_s, b_e, deficit0 = m["boost"]
        before = s < t_end
        modes.append({"discharge": (s[before], e[before], amps[before]),
                      "boost": (b_s[before], b_e[before], deficit0[before]),
                      "equalize": m["equalize"]})
        anchors.append(start_pct[before])
    d, sched = history._schedule.discharges, history._schedule
    natural = (d.start_s >= t_end) & (sched.kind != operations.CAPACITY_TEST)
    sids = st.string_id.to_numpy()
    return LiveSeed(
        site_id=history.site_id, seed=history._seed, t_end_s=t_end,
        step_s=step_s,
        params=history._params, env=history._env,
        battery_id=st.battery_id.to_numpy()[keep], string_id=sids[keep],
        string_ids=[s[0] for s in history._strings], system_ids=[s[1] for s in history._strings],
        units=units.subset(keep), life_used=last[keep], damage=np.zeros(int(keep.sum())),
        short_s=st.short_s[keep], runaway_s=st.runaway_s[keep],
        float_share_v=st.float_share_v[keep], charger_offset_v=float(st.charger_offset_v),
        room_c=float(history.environment["room_temp_c"][-1]),
        block_c=float(history._block_c[-1]), loads_a=np.asarray(history._loads_a, float),
        string_rated_ah=st.string_rated_ah, current_gain=st.current_gain,
        current_offset_a=st.current_offset_a, modes=modes, monitor_start_pct=anchors,
        outages=(d.start_s[natural], d.duration_s[natural], d.string_idx[natural]),
    )


def seed_path(lake: Path, site_id: str) -> Path:
    return lake / "live_state" / f"{site_id}.pkl"


def save_seed(seed: LiveSeed, lake: Path) -> Path:
    """Write atomically (temp file, then rename), like every lake file."""
    path = seed_path(lake, seed.site_id)
    with atomic_path(path) as tmp:
        tmp.write_bytes(pickle.dumps({"version": FORMAT_VERSION, "seed": seed}))
    return path


def load_seeds(lake: Path) -> list[LiveSeed]:
    """Every site's seed, in site order; a clear error when the history has none."""
    files = sorted((lake / "live_state").glob("*.pkl"))
    if not files:
        raise FileNotFoundError(f"{lake / 'live_state'}: no end-of-history state; run "
                                "`make pipeline` (or `rul generate`) first")
    seeds = []
    for f in files:
        payload = pickle.loads(f.read_bytes())
        if payload.get("version") != FORMAT_VERSION:
            raise ValueError(f"{f}: written by another version of the simulator; regenerate")
        seeds.append(payload["seed"])
    return seeds


def seed_summary(seeds: list[LiveSeed]) -> pl.DataFrame:
    return pl.DataFrame({"site_id": [s.site_id for s in seeds],
                         "batteries": [len(s.battery_id) for s in seeds],
                         "t_end_s": [s.t_end_s for s in seeds]})
