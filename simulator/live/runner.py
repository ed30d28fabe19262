"""The live simulator's process: a tick every `tick_s` wall seconds, each advancing simulated
time by `tick_s x speed`, one reading per in-service battery per tick.

Readings are buffered and landed as one Parquet file per table every `rotate_s` wall seconds
(append-only, atomic renames; the DuckDB file is never touched). Before a batch is landed the
whole state, the batch included, is checkpointed, so after a `kill -9` a restart re-lands
that batch under the same name (ingest is idempotent by name) and continues with the next
tick: no gap larger than one tick, no duplicate (battery_id, ts).
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from simulator.atomic import atomic_path
from simulator.live import scenarios as sc
from simulator.live.control import Control, now_iso, read_pid, write_json
from simulator.live.engine import LiveSite
from simulator.live.seed import load_seeds

TABLES = ("telemetry", "environment", "discharge_events")
CHECKPOINT_VERSION = 1


@dataclass
class Paths:
    lake: Path  # where the history's end state (`live_state/`) lives
    landing: Path
    live: Path


@dataclass
class Counters:
    ticks: int = 0
    readings: int = 0  # telemetry rows landed
    files: int = 0
    seq: int = 0  # landing batches so far (names are unique and sortable)


@dataclass
class LiveFleet:
    """Every site, stepped together on one simulated clock."""

    sites: list[LiveSite]
    t_s: float
    counters: Counters = field(default_factory=Counters)
    pending: dict | None = None  # the batch being landed: {"name": ..., "frames": {...}}

    @classmethod
    def from_history(cls, lake: Path) -> LiveFleet:
        sites = [LiveSite(seed) for seed in load_seeds(lake)]
        return cls(sites, min(s.seed.t_end_s for s in sites) - sites[0].seed.step_s)

    def next_time(self, sim_step_s: float) -> float:
        """The first tick lands exactly on the history's end, the rest `sim_step_s` apart."""
        t_end = min(s.seed.t_end_s for s in self.sites)
        return t_end if self.t_s < t_end else self.t_s + sim_step_s

    def targets(self) -> sc.Targets:
        return sc.Targets.of(self.sites)

    def step(self, t_new: float, control: dict) -> dict[str, pl.DataFrame]:
        frames: dict[str, list[pl.DataFrame]] = {t: [] for t in TABLES}
        for site in self.sites:
            fx = sc.effects(site, control["scenarios"], control["offsets"], t_new)
            for table, frame in site.step(t_new, fx).items():
                frames[table].append(frame)
        self.t_s = t_new
        return {t: pl.concat(f) for t, f in frames.items()}

    # -- checkpoint: the dynamic state only; the seeds are re-read from the lake --------
    def save(self, path: Path) -> None:
        state = {"version": CHECKPOINT_VERSION, "t_s": self.t_s, "counters": self.counters,
                 "pending": self.pending,
                 "sites": [{k: v for k, v in vars(s).items() if k != "seed"} for s in self.sites]}
        with atomic_path(path) as tmp:
            tmp.write_bytes(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))

    @classmethod
    def resume(cls, lake: Path, path: Path) -> LiveFleet:
        state = pickle.loads(path.read_bytes())
        if state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"{path}: checkpoint of another simulator version; remove it")
        fleet = cls.from_history(lake)
        for site, saved in zip(fleet.sites, state["sites"], strict=True):
            vars(site).update(saved)
        fleet.t_s, fleet.counters, fleet.pending = state["t_s"], state["counters"], state["pending"]
        return fleet


def land(frames: dict[str, pl.DataFrame], name: str, landing: Path) -> int:
    """Write one batch: a file per non-empty table, each renamed into place when complete."""
    files = 0
    for table, frame in frames.items():
        if frame.is_empty():
            continue
        with atomic_path(landing / table / f"{name}.parquet") as tmp:
            frame.write_parquet(tmp, compression="zstd")
        files += 1
    return files


FEED = "latest"  # folder under the live folder: the newest tick's readings, for dashboards


def publish_feed(frames: dict[str, pl.DataFrame], live: Path) -> None:
    """Replace `live/latest/<table>.parquet` with this tick's rows: dashboards show a reading
    within a tick of its simulated time, while the landing keeps its one batch a minute (the
    warehouse and the alerts still come through the landing and the ingest)."""
    for table in ("telemetry", "environment"):
        frame = frames.get(table)
        if frame is not None and not frame.is_empty():
            with atomic_path(live / FEED / f"{table}.parquet") as tmp:
                frame.write_parquet(tmp, compression="lz4")


class Runner:
    """Runs the loop in this process until SIGTERM/SIGINT (or `max_ticks`, for tests)."""

    def __init__(self, paths: Paths, tick_s: float = 5.0, speed: float = 1.0,
                 rotate_s: float = 60.0, max_ticks: int | None = None) -> None:
        self.paths, self.tick_s, self.speed = paths, tick_s, speed
        self.rotate_s, self.max_ticks = rotate_s, max_ticks
        self.control = Control(paths.live)
        self.checkpoint = paths.live / "checkpoint.pkl"
        self._stop = False
        self._buffer: dict[str, list[pl.DataFrame]] = {t: [] for t in TABLES}

    def run(self) -> Counters:
        live = self.paths.live
        live.mkdir(parents=True, exist_ok=True)
        other = read_pid(live)
        if other is not None and other != os.getpid():
            raise RuntimeError(f"a simulator is already running (pid {other}); "
                               "`rul simulate stop` first")
        (live / "simulator.pid").write_text(str(os.getpid()))
        stops = (signal.SIGTERM, signal.SIGINT)
        # a parent that blocked them (some libraries do, around their own work) passes its
        # signal mask on to us: without this a `stop` would never be heard
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
        for sig in stops:
            signal.signal(sig, lambda *_: setattr(self, "_stop", True))
        try:
            if self.checkpoint.exists():
                fleet = LiveFleet.resume(self.paths.lake, self.checkpoint)
                if fleet.pending:  # landed again under its own name: ingest drops repeats
                    land(fleet.pending["frames"], fleet.pending["name"], self.paths.landing)
            else:
                fleet = LiveFleet.from_history(self.paths.lake)
            return self._loop(fleet)
        finally:
            (live / "simulator.pid").unlink(missing_ok=True)
            self._status(None, "stopped", 0.0)

    def _loop(self, fleet: LiveFleet) -> Counters:
        self.started_wall = time.time()
        started, cpu0 = time.monotonic(), time.process_time()
        self._fleet, self._cpu = fleet, (cpu0, started)
        last_rotate, k, lag = started, 0, 0.0
        targets = fleet.targets()
        while not self._stop and (self.max_ticks is None or k < self.max_ticks):
            due = started + k * self.tick_s
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
                if self._stop:
                    break
            lag = max(0.0, time.monotonic() - due)
            t_new = fleet.next_time(self.tick_s * self.speed)
            control = self._control(t_new, targets)
            frames = fleet.step(t_new, control)
            for table, frame in frames.items():
                self._buffer[table].append(frame)
            publish_feed(frames, self.paths.live)
            fleet.counters.ticks += 1
            k += 1
            if time.monotonic() - last_rotate >= self.rotate_s:
                self._commit(fleet)
                last_rotate = time.monotonic()
            self._status(fleet, "running", lag, control)
        self._commit(fleet)
        return fleet.counters

    def _control(self, t_s: float, targets: sc.Targets) -> dict:
        """Stamp new scenarios with the simulated time they start, end expired ones."""
        def change(state: dict) -> dict:
            for s in state["scenarios"]:
                if s["start_s"] is None:
                    s["start_s"] = t_s
            done = [s for s in state["scenarios"] if sc.expired(s, t_s)]
            if done:
                for s in done:
                    s.update(ended_how="duration", ended_by="simulator", ended_at=now_iso())
                state["scenarios"] = [s for s in state["scenarios"] if s not in done]
                state["ended"] = (state["ended"] + done)[-500:]
            return state
        return self.control.update(change)

    def _commit(self, fleet: LiveFleet) -> None:
        frames = {t: pl.concat(f) if f else pl.DataFrame() for t, f in self._buffer.items()}
        if frames["telemetry"].is_empty():
            return
        first = frames["telemetry"]["ts"].min()
        name = f"{first:%Y%m%dT%H%M%SZ}-{fleet.counters.seq:06d}"
        fleet.counters.seq += 1
        fleet.counters.readings += frames["telemetry"].height
        fleet.pending = {"name": name, "frames": frames}
        fleet.save(self.checkpoint)  # state and batch first: a kill after this re-lands it
        fleet.counters.files += land(frames, name, self.paths.landing)
        self._buffer = {t: [] for t in TABLES}

    def _status(self, fleet: LiveFleet | None, state: str, lag: float,
                control: dict | None = None) -> None:
        fleet = fleet or getattr(self, "_fleet", None)
        if fleet is None:
            return
        control = control or self.control.read()
        cpu0, wall0 = self._cpu
        elapsed = max(time.monotonic() - wall0, 1e-9)
        write_json(self.paths.live / "status.json", {
            "state": state, "started_at": dt.datetime.fromtimestamp(
                self.started_wall, dt.UTC).isoformat(timespec="seconds"),
            "updated_at": now_iso(), "uptime_s": round(elapsed, 1),
            "sim_time": dt.datetime.fromtimestamp(fleet.t_s, dt.UTC).isoformat(),
            "tick_s": self.tick_s, "speed": self.speed, "ticks": fleet.counters.ticks,
            "readings_written": fleet.counters.readings, "files_written": fleet.counters.files,
            "readings_buffered": sum(f.height for f in self._buffer["telemetry"]),
            "lag_s": round(lag, 3), "cpu_share": round((time.process_time() - cpu0) / elapsed, 4),
            "sites": len(fleet.sites), "batteries": sum(s.n_units for s in fleet.sites),
            "scenarios": control["scenarios"], "offsets": control["offsets"],
        })
