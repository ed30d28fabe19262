"""The operators' handle on the live simulator in the Dagster UI: one job whose launchpad
config starts, stops or steers it through the same control interface as `rul simulate`."""

from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from assets.resources.storage import LakeStorage


class SimulatorCommand(dg.Config):
    """What to do; fields that do not apply to the action are ignored."""

    action: Literal["status", "start", "stop", "apply", "clear", "adjust"] = Field(
        default="status", description="status | start | stop | apply | clear | adjust")
    tick_s: float = Field(default=5.0, gt=0, description="start: wall seconds between ticks")
    speed: float = Field(default=60.0, gt=0, description="start: simulated seconds per wall "
                         "second")
    scenario: str | None = Field(default=None, description="apply: scenario name, e.g. "
                                 "hvac_failure (see `rul simulate scenario list`)")
    target: str | None = Field(default=None, description="apply/clear/adjust: site, string "
                               "or battery id")
    duration_minutes: float | None = Field(default=None, gt=0, description="apply: simulated "
                                           "minutes until it ends by itself")
    params: dict[str, float] = Field(default_factory=dict, description="apply: scenario "
                                     "parameters, e.g. {factor: 1000}")
    scenario_id: str | None = Field(default=None, description="clear: one scenario id; "
                                    "none clears every scenario (of `target` if given)")
    offsets: dict[str, float] = Field(default_factory=dict, description="adjust: "
                                      "temperature_c / voltage_v / discharge_rate")
    reset: bool = Field(default=False, description="adjust: drop the target's offsets first")


@dg.op(name="control_simulator")
def control_simulator(context: dg.OpExecutionContext, config: SimulatorCommand,
                      storage: LakeStorage) -> dict:
    """Run one simulator command and report the simulator's status afterwards."""
    from core.layout import Layout
    from core.live import start_detached, stop, targets
    from simulator.live import scenarios as sc
    from simulator.live.control import Control, read_status

    layout = Layout(Path(storage.base_dir))
    control = Control(layout.live_dir)
    by = f"dagster:{context.run_id[:8]}"
    try:
        if config.action == "start":
            context.log.info(f"started, pid {start_detached(layout, config.tick_s, config.speed)}")
        elif config.action == "stop":
            context.log.info(f"stopped pid {stop(layout)}")
        elif config.action == "apply":
            sc.check_scenario(config.scenario or "", config.target or "", config.params,
                              targets(layout))
            duration = config.duration_minutes * 60 if config.duration_minutes else None
            made = control.apply(config.scenario, config.target, duration, config.params, by)
            context.log.info(f"applied {made['id']}")
        elif config.action == "clear":
            ended = control.clear(config.scenario_id, config.target, by)
            context.log.info(f"cleared {[s['id'] for s in ended]}")
        elif config.action == "adjust":
            known = targets(layout)
            for name, value in config.offsets.items():
                sc.check_offset(name, value, config.target or "", known)
            control.adjust(config.target or "", config.offsets, config.reset, by)
    except (sc.ScenarioError, RuntimeError, FileNotFoundError) as exc:
        raise dg.Failure(description=str(exc)) from None
    status = read_status(layout.live_dir)
    context.add_output_metadata({
        "running": bool(status.get("running")), "sim_time": str(status.get("sim_time")),
        "readings_written": int(status.get("readings_written") or 0),
        "active_scenarios": dg.MetadataValue.json(control.read()["scenarios"]),
    })
    return status


@dg.job(name="simulator_control", description="Start, stop or steer the live simulator "
        "(scenarios, offsets) from the launchpad; the same interface as `rul simulate`.")
def simulator_control() -> None:
    control_simulator()
