"""The one control interface of the live simulator: a JSON control file (scenarios, offsets)
that the CLI, the Dagster control job and the dashboards edit, and a status file the running
simulator rewrites every tick. Every change takes an exclusive lock on the control file and
replaces it atomically, so the simulator and any number of controllers never lose an update.

Layout under the live folder: `control.json`, `control.lock`, `status.json`, `simulator.pid`,
`checkpoint.pkl`, `simulator.log`.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from simulator.atomic import atomic_path

EMPTY = {"scenarios": [], "offsets": {}, "ended": [], "next_id": 1, "log": []}
LOG_KEEP = 500  # the last control actions kept for the audit view


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def write_json(path: Path, payload: Any) -> None:
    """Atomically: readers see the old or the new file, never half of one."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


class Control:
    """Scenarios and offsets of one live folder."""

    def __init__(self, live_dir: Path) -> None:
        self.dir = Path(live_dir)
        self.path = self.dir / "control.json"

    @contextmanager
    def _locked(self) -> Iterator[dict]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "control.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = read_json(self.path, None) or json.loads(json.dumps(EMPTY))
                before = json.dumps(state, sort_keys=True, default=str)
                yield state
                if json.dumps(state, sort_keys=True, default=str) != before:
                    write_json(self.path, state)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> dict:
        return read_json(self.path, None) or json.loads(json.dumps(EMPTY))

    def update(self, change: Callable[[dict], Any]) -> Any:
        with self._locked() as state:
            return change(state)

    def apply(self, name: str, target: str, duration_s: float | None, params: dict,
              by: str = "cli") -> dict:
        def change(state: dict) -> dict:
            scenario = {"id": f"sc{state['next_id']}", "name": name, "target": target,
                        "params": params, "duration_s": duration_s, "start_s": None,
                        "applied_at": now_iso(), "applied_by": by}
            state["next_id"] += 1
            if name == "normal":  # normal operation: end everything on that target
                _end(state, lambda s: s["target"] == target, "normal", by)
            else:
                state["scenarios"].append(scenario)
            _log(state, by, "apply", f"{name} on {target}"
                 + (f" for {duration_s:g} s" if duration_s else ""))
            return scenario
        return self.update(change)

    def clear(self, scenario_id: str | None = None, target: str | None = None,
              by: str = "cli") -> list[dict]:
        """End scenarios by id, by target, or all of them; returns what was ended."""
        def change(state: dict) -> list[dict]:
            ended = _end(state, lambda s: (scenario_id is None or s["id"] == scenario_id)
                         and (target is None or s["target"] == target), "cleared", by)
            _log(state, by, "clear", ", ".join(s["id"] for s in ended) or "nothing")
            return ended
        return self.update(change)

    def adjust(self, target: str, values: dict[str, float], reset: bool, by: str = "cli") -> dict:
        def change(state: dict) -> dict:
            current = {} if reset else state["offsets"].get(target, {})
            current = current | values
            if current:
                state["offsets"][target] = current
            else:
                state["offsets"].pop(target, None)
            _log(state, by, "adjust", f"{target}: {current or 'reset'}")
            return current
        return self.update(change)


def _end(state: dict, match: Callable[[dict], bool], how: str, by: str) -> list[dict]:
    ended = [s for s in state["scenarios"] if match(s)]
    state["scenarios"] = [s for s in state["scenarios"] if not match(s)]
    for s in ended:
        s.update(ended_how=how, ended_by=by, ended_at=now_iso())
    state["ended"] = (state["ended"] + ended)[-LOG_KEEP:]
    return ended


def _log(state: dict, by: str, action: str, detail: str) -> None:
    state["log"] = (state["log"] + [{"at": now_iso(), "by": by, "action": action,
                                     "detail": detail}])[-LOG_KEEP:]


def read_status(live_dir: Path) -> dict:
    """The last status the simulator wrote, with `running` checked against its process."""
    status = read_json(Path(live_dir) / "status.json", {}) or {}
    pid = read_pid(live_dir)
    status["running"] = pid is not None
    status["pid"] = pid
    return status


def read_pid(live_dir: Path) -> int | None:
    """The simulator's pid if that process is alive, else None."""
    try:
        pid = int((Path(live_dir) / "simulator.pid").read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    except PermissionError:
        return pid
    return None if _zombie(pid) else pid


def _zombie(pid: int) -> bool:
    """A killed child its parent has not reaped yet still answers kill(pid, 0)."""
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except (FileNotFoundError, IndexError):
        return False
