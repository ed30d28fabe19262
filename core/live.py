"""Starting, stopping and addressing the live simulator, for every entry point (the CLI, the
Dagster control job, the soak command, later the dashboards). The simulator itself runs as
`rul simulate start` in its own process; this module finds it through the live folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from core.layout import Layout
from simulator.live.control import read_pid, read_status
from simulator.live.runner import FEED, Paths
from simulator.live.scenarios import Targets

START_TIMEOUT_S = 120.0  # loading nine sites' state takes a few seconds; a cold venv longer


def runner_paths(layout: Layout) -> Paths:
    return Paths(lake=layout.lake_dir, landing=layout.landing_dir, live=layout.live_dir)


def targets(layout: Layout) -> Targets:
    """Every site, string and in-service battery id the live run knows (from the history's
    end state)."""
    from simulator.live.engine import LiveSite
    from simulator.live.seed import load_seeds

    return Targets.of([LiveSite(seed) for seed in load_seeds(layout.lake_dir)])


def start_detached(layout: Layout, tick_s: float, speed: float, rotate_s: float = 60.0) -> int:
    """Run `rul simulate start` as its own session (it outlives the caller) logging to
    `live/simulator.log`; returns its pid once it is ticking."""
    if (pid := read_pid(layout.live_dir)) is not None:
        raise RuntimeError(f"the simulator is already running (pid {pid})")
    layout.live_dir.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "pipelines.cli", "simulate", "start", "--tick", f"{tick_s}s",
            "--speed", str(speed), "--rotate", f"{rotate_s}s"]
    env = os.environ | {"RUL_DATA_DIR": str(layout.data_dir)}
    with open(layout.live_dir / "simulator.log", "ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (layout.live_dir / "simulator.log").read_text(errors="replace")[-400:]
            raise RuntimeError(f"the simulator exited at start: {tail.strip().splitlines()[-1]}")
        status = read_status(layout.live_dir)
        if status.get("running") and status.get("state") == "running":
            return proc.pid
        time.sleep(0.2)
    raise RuntimeError(f"the simulator did not start within {START_TIMEOUT_S:.0f} s; see "
                       f"{layout.live_dir / 'simulator.log'}")


def stop(layout: Layout, timeout_s: float = 30.0) -> int | None:
    """SIGTERM the simulator and wait until it has landed its last batch; its pid, or None
    when none was running."""
    pid = read_pid(layout.live_dir)
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if read_pid(layout.live_dir) is None:
            return pid
        time.sleep(0.1)
    raise RuntimeError(f"the simulator (pid {pid}) did not stop within {timeout_s:.0f} s")



def reset_live(layout: Layout) -> None:
    """Forget everything the live run produced (for a new history): its checkpoint, landing
    area, live lake tables, predictions and alerts. Refused while the simulator runs."""
    import shutil

    if (pid := read_pid(layout.live_dir)) is not None:
        raise RuntimeError(f"the simulator is running (pid {pid}); stop it first")
    (layout.live_dir / "checkpoint.pkl").unlink(missing_ok=True)
    shutil.rmtree(layout.live_dir / FEED, ignore_errors=True)
    lake = layout.lake_dir
    for path in (layout.landing_dir, layout.alerts_db.parent, lake / "_ingest",
                 lake / "rul_predictions", lake / "features" / "scored",
                 lake / "features" / "daily", *lake.glob("*_live")):
        shutil.rmtree(path, ignore_errors=True)
    for name in ("alerts.parquet", "alert_events.parquet"):
        (lake / name).unlink(missing_ok=True)
