"""`rul simulate`: run and steer the live simulator (start, stop, status, scenarios,
offsets). Every command goes through `simulator.live.control`, the interface the Dagster
control job and the dashboards use too."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re

from pipelines.cli.common import UserError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def register(commands: argparse._SubParsersAction) -> None:
    """Add `rul simulate ...` to the `rul` parser."""
    sim = commands.add_parser("simulate", help="run and steer the live simulator",
                              description="The live simulator carries the fleet on from the "
                              "end of the history; its files are under RUL_DATA_DIR/live.")
    sub = sim.add_subparsers(title="commands", required=True, metavar="COMMAND")
    start = sub.add_parser("start", help="run the simulator (in the foreground by default)")
    start.add_argument("--tick", default="5s", help="wall time between ticks (default 5s)")
    start.add_argument("--speed", default="1", help="simulated seconds per wall second")
    start.add_argument("--rotate", default="60s", help="wall time between landed files")
    start.add_argument("--detach", action="store_true", help="run in the background")
    start.set_defaults(command=_start)
    stop = sub.add_parser("stop", help="stop the running simulator (it lands its last batch)")
    stop.set_defaults(command=_stop)
    status = sub.add_parser("status", help="uptime, simulated time, ticks, readings, scenarios")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(command=_status)

    scenario = sub.add_parser("scenario", help="list, apply or clear scenarios")
    scen = scenario.add_subparsers(title="commands", required=True, metavar="COMMAND")
    listing = scen.add_parser("list", help="the catalogue and the active scenarios")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(command=_scenario_list)
    apply = scen.add_parser("apply", help="apply a scenario to a site, string or battery")
    apply.add_argument("name", help="scenario name (see `scenario list`)")
    apply.add_argument("--target", required=True, help="site, string or battery id")
    apply.add_argument("--duration", help="simulated duration, e.g. 30m, 2h, 3d")
    apply.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="scenario parameter, e.g. factor=1000 or delta_c=12")
    apply.add_argument("--by", default="cli", help="who applies it (audit)")
    apply.set_defaults(command=_scenario_apply)
    clear = scen.add_parser("clear", help="end scenarios: one id, a target's, or all")
    clear.add_argument("id", nargs="?", help="scenario id (e.g. sc3); none: all")
    clear.add_argument("--target", help="only the scenarios on this target")
    clear.add_argument("--by", default="cli", help="who clears it (audit)")
    clear.set_defaults(command=_scenario_clear)

    adjust = sub.add_parser("adjust", help="set offsets on a target (kept until --reset)")
    adjust.add_argument("--target", required=True, help="site, string or battery id")
    adjust.add_argument("--temperature", type=float, metavar="DEGC",
                        help="added to the target's temperature (site: the room)")
    adjust.add_argument("--voltage", type=float, metavar="V", help="charger set point per block")
    adjust.add_argument("--discharge-rate", type=float, metavar="X", help="load multiplier")
    adjust.add_argument("--reset", action="store_true", help="drop the target's offsets first")
    adjust.add_argument("--by", default="cli", help="who adjusts it (audit)")
    adjust.set_defaults(command=_adjust)


def parse_duration(text: str, name: str) -> float:
    match = _DURATION.match(text or "")
    if not match or float(match[1]) <= 0:
        raise UserError(f"{name}: expected a duration like 5s, 30m, 2h or 3d; got {text!r}")
    return float(match[1]) * _UNIT_S[match[2]]


def _layout():
    from core.layout import Layout
    from core.settings import Settings

    return Layout(Settings.from_env().data_dir)


def _targets(layout):
    from core.live import targets

    try:
        return targets(layout)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None


def _start(args: argparse.Namespace) -> int:
    tick = parse_duration(args.tick, "--tick")
    rotate = parse_duration(args.rotate, "--rotate")
    try:
        speed = float(args.speed)
    except ValueError:
        speed = 0.0
    if not 0 < speed <= 1e6:
        raise UserError(f"--speed: expected a number of simulated seconds per wall second "
                        f"(0 < X <= 1e6), got {args.speed!r}")
    layout = _layout()
    _targets(layout)  # a clear error when there is no history to continue
    from core.live import runner_paths, start_detached

    if args.detach:
        try:
            pid = start_detached(layout, tick, speed, rotate)
        except RuntimeError as exc:
            raise UserError(str(exc)) from None
        print(f"simulator running in the background (pid {pid}); log "
              f"{layout.live_dir / 'simulator.log'}; `rul simulate stop` ends it")
        return 0
    from simulator.live.runner import Runner

    print(f"simulator: a tick every {tick:g} s at {speed:g}x; landing in {layout.landing_dir}; "
          "Ctrl-C stops it", flush=True)
    try:
        counters = Runner(runner_paths(layout), tick, speed, rotate).run()
    except RuntimeError as exc:
        raise UserError(str(exc)) from None
    print(f"stopped after {counters.ticks:,} ticks; {counters.readings:,} readings landed")
    return 0


def _stop(args: argparse.Namespace) -> int:
    from core.live import stop

    try:
        pid = stop(_layout())
    except RuntimeError as exc:
        raise UserError(str(exc)) from None
    print("no simulator was running" if pid is None else f"simulator (pid {pid}) stopped")
    return 0


def _status(args: argparse.Namespace) -> int:
    from simulator.live.control import read_status

    status = read_status(_layout().live_dir)
    if args.json:
        print(json.dumps(status, indent=2, default=str))
        return 0
    if not status.get("sim_time"):
        print("the simulator has not run yet: `rul simulate start`")
        return 0
    state = "running" if status["running"] else "stopped"
    print(f"{state}; simulated time {status['sim_time']} UTC; {status['ticks']:,} ticks at "
          f"{status['speed']:g}x every {status['tick_s']:g} s; uptime {status['uptime_s']:,.0f} s")
    print(f"readings landed {status['readings_written']:,} in {status['files_written']:,} files "
          f"(+{status['readings_buffered']:,} buffered); lag {status['lag_s']:.2f} s; "
          f"CPU {100 * status['cpu_share']:.1f} % of a core; {status['batteries']:,} batteries")
    for s in status.get("scenarios", []):
        print(f"  {s['id']:<6} {s['name']:<24} {s['target']}")
    for target, values in (status.get("offsets") or {}).items():
        print(f"  offset {target}: {values}")
    return 0


def _scenario_list(args: argparse.Namespace) -> int:
    from simulator.live.control import Control
    from simulator.live.scenarios import CATALOGUE

    active = Control(_layout().live_dir).read()["scenarios"]
    if args.json:
        print(json.dumps({"catalogue": [{"name": s.name, "targets": s.targets,
                                         "summary": s.summary,
                                         "params": {k: v[0] for k, v in s.params.items()}}
                                        for s in CATALOGUE.values()],
                          "active": active}, indent=2))
        return 0
    for s in CATALOGUE.values():
        params = " ".join(f"{k}={v[0]:g} ({v[1]:g}..{v[2]:g})" for k, v in s.params.items())
        print(f"{s.name:<24} {'/'.join(s.targets):<20} {s.summary}" + (f" [{params}]"
                                                                       if params else ""))
    print(f"\nactive: {len(active)}")
    for s in active:
        started = "pending" if s["start_s"] is None else dt.datetime.fromtimestamp(
            s["start_s"], dt.UTC).isoformat()
        print(f"  {s['id']:<6} {s['name']:<24} {s['target']:<28} since {started}")
    return 0


def _scenario_apply(args: argparse.Namespace) -> int:
    from simulator.live.control import Control
    from simulator.live.scenarios import ScenarioError, check_scenario

    layout = _layout()
    params = {}
    for item in args.param:
        key, _, value = item.partition("=")
        try:
            params[key.strip()] = float(value)
        except ValueError:
            raise UserError(f"--param: expected KEY=NUMBER, got {item!r}") from None
    duration = parse_duration(args.duration, "--duration") if args.duration else None
    try:
        check_scenario(args.name, args.target, params, _targets(layout))
    except ScenarioError as exc:
        raise UserError(str(exc)) from None
    scenario = Control(layout.live_dir).apply(args.name, args.target, duration, params, args.by)
    print(f"{scenario['id']}: {args.name} on {args.target}"
          + (f" for {args.duration}" if duration else "") + " (starts at the next tick)")
    return 0


def _scenario_clear(args: argparse.Namespace) -> int:
    from simulator.live.control import Control

    layout = _layout()
    control = Control(layout.live_dir)
    ids = {s["id"] for s in control.read()["scenarios"]}
    if args.id and args.id not in ids:
        raise UserError(f"no active scenario {args.id!r}"
                        + (f"; active: {', '.join(sorted(ids))}" if ids else ""))
    if args.target:
        _check_target(layout, args.target)
    ended = control.clear(args.id, args.target, args.by)
    print(f"cleared {len(ended)}: {', '.join(s['id'] for s in ended) or 'none active'}")
    return 0


def _check_target(layout, target: str) -> None:
    from simulator.live.scenarios import ScenarioError

    try:
        _targets(layout).kind(target)
    except ScenarioError as exc:
        raise UserError(str(exc)) from None


def _adjust(args: argparse.Namespace) -> int:
    from simulator.live.control import Control
    from simulator.live.scenarios import ScenarioError, check_offset

    layout = _layout()
    values = {k: v for k, v in (("temperature_c", args.temperature), ("voltage_v", args.voltage),
                                ("discharge_rate", args.discharge_rate)) if v is not None}
    if not values and not args.reset:
        raise UserError("adjust: give --temperature, --voltage, --discharge-rate or --reset")
    targets = _targets(layout)
    try:
        targets.kind(args.target)
        for name, value in values.items():
            check_offset(name, value, args.target, targets)
    except ScenarioError as exc:
        raise UserError(str(exc)) from None
    now = Control(layout.live_dir).adjust(args.target, values, args.reset, args.by)
    print(f"offsets on {args.target}: {now or 'none'}")
    return 0
