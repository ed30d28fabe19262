"""Cost of the live simulator: CPU share of one core at a given tick, for the default fleet
(1,944 batteries, 5-s tick) and a 100,000-battery scaled fleet (60-s tick).

The simulator's work per tick (control file, every site's physics and readings, status file)
and per rotation (checkpoint and landed Parquet files, one per minute) is run back to back,
without the sleeps between ticks, and timed with the process CPU clock; the share of a core is
CPU seconds per tick / tick seconds. The live cost does not depend on the history's length, so
the end-of-history states come from a 7-day history (or from `lake/live_state/` when the lake
given has one). The scaled fleet repeats the nine sites' states with suffixed ids.

    uv run python benchmarks/bench_live.py [LAKE]
"""

from __future__ import annotations

import copy
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from simulator.config import load_fleet
from simulator.generate import Window, simulate_site
from simulator.live.engine import LiveSite
from simulator.live.runner import LiveFleet, Paths, Runner
from simulator.live.seed import live_seed, load_seeds

SCALED_BATTERIES = 100_000


def seeds(lake: Path | None):
    if lake is not None and (lake / "live_state").is_dir():
        return load_seeds(lake)
    fleet = load_fleet(None)
    return [live_seed(simulate_site(fleet, s.code, Window(dt.date(2024, 1, 1), 7), 42))
            for s in fleet.sites]


def replicate(base: list, copies: int) -> list:
    out = []
    for k in range(copies):
        for seed in base:
            s = copy.copy(seed)
            s.site_id = f"{seed.site_id}-X{k:02d}"
            s.battery_id = np.char.add(seed.battery_id.astype(str), f"-X{k:02d}")
            s.string_id = np.char.add(seed.string_id.astype(str), f"-X{k:02d}")
            s.string_ids = [f"{x}-X{k:02d}" for x in seed.string_ids]
            out.append(s)
    return out


def measure(site_seeds: list, tick_s: float, speed: float, ticks: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths(Path(tmp), Path(tmp) / "landing", Path(tmp) / "live")
        paths.live.mkdir()
        fleet = LiveFleet([LiveSite(s) for s in site_seeds], 0.0)
        fleet.t_s = min(s.t_end_s for s in site_seeds) - site_seeds[0].step_s
        runner = Runner(paths, tick_s, speed)
        runner.started_wall, runner._fleet = time.time(), fleet
        runner._cpu = (time.process_time(), time.monotonic())
        per_rotation = max(1, round(60 / tick_s))
        cpu0, targets = time.process_time(), fleet.targets()
        for k in range(ticks):
            t_new = fleet.next_time(tick_s * speed)
            control = runner._control(t_new, targets)
            for table, frame in fleet.step(t_new, control).items():
                runner._buffer[table].append(frame)
            fleet.counters.ticks += 1
            if (k + 1) % per_rotation == 0:
                runner._commit(fleet)
            runner._status(fleet, "running", 0.0, control)
        cpu = (time.process_time() - cpu0) / ticks
        return {"batteries": sum(len(s.battery_id) for s in site_seeds), "tick_s": tick_s,
                "cpu_ms_per_tick": 1000 * cpu, "core_share": cpu / tick_s,
                "readings": fleet.counters.readings}


def main() -> None:
    lake = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    began = time.perf_counter()
    base = seeds(lake)
    print(f"end-of-history states of {len(base)} sites: {time.perf_counter() - began:.1f} s")
    n = sum(len(s.battery_id) for s in base)
    copies = int(np.ceil(SCALED_BATTERIES / n))
    for label, site_seeds, tick, ticks in (("default fleet", base, 5.0, 120),
                                           ("scaled fleet", replicate(base, copies), 60.0, 10)):
        r = measure(site_seeds, tick, 60.0, ticks)
        print(f"{label:<14} {r['batteries']:>7,} batteries  tick {r['tick_s']:>4.0f} s  "
              f"CPU {r['cpu_ms_per_tick']:8.1f} ms/tick  = {100 * r['core_share']:5.2f} % of a "
              f"core  ({r['readings']:,} readings landed)")


if __name__ == "__main__":
    main()
