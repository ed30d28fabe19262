"""`rul soak`: the live platform under load with a simulator crash, counted end to end."""

from __future__ import annotations

import argparse
import json

from pipelines.cli.common import UserError


def register(commands: argparse._SubParsersAction) -> None:
    """Add `rul soak` to the `rul` parser."""
    soak = commands.add_parser(
        "soak", help="run simulator, ingest, alerts and scoring together; kill -9 the "
        "simulator halfway; count readings end to end",
        description="Works in RUL_DATA_DIR/soak (linking the history); exits 1 if a reading "
        "was lost or duplicated, a gap exceeded one tick, a lock error or a failed run occurred.")
    soak.add_argument("--minutes", type=float, required=True, help="wall minutes to run")
    soak.add_argument("--tick", default="1s", help="simulator tick (default 1s)")
    soak.add_argument("--speed", type=float, default=60.0,
                      help="simulated seconds per wall second (default 60: an hour a minute)")
    soak.add_argument("--json", action="store_true", help="print the report as JSON")
    soak.set_defaults(command=_soak)


def _soak(args: argparse.Namespace) -> int:
    from core.settings import Settings
    from pipelines.cli.simulate import parse_duration

    if not 0 < args.minutes <= 24 * 60:
        raise UserError(f"--minutes: expected 0 < N <= 1440, got {args.minutes:g}")
    if not 0 < args.speed <= 1e5:
        raise UserError(f"--speed: expected 0 < X <= 1e5, got {args.speed:g}")
    tick = parse_duration(args.tick, "--tick")
    from pipelines.soak import soak

    try:
        report = soak(Settings.from_env(), args.minutes, tick, args.speed,
                      echo=(lambda _: None) if args.json else print)
    except (FileNotFoundError, RuntimeError) as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        r = report
        print(f"soak {r.minutes:g} min at {r.speed:g}x, tick {r.tick_s:g} s, "
              f"{r.simulator_kills} SIGKILL of the simulator")
        print(f"readings written      {r.readings_written:>10,}")
        print(f"readings in warehouse {r.readings_in_warehouse:>10,}")
        print(f"lost                  {r.lost:>10,}")
        print(f"duplicates            {r.duplicates:>10,}")
        print(f"gaps > one tick       {r.gaps_over_one_tick:>10,}")
        print(f"lock errors           {r.lock_errors:>10,}  ({r.warehouse_reads:,} reads)")
        print(f"alerts opened         {r.alerts_opened:>10,}  (resolved {r.alerts_resolved:,})")
        print(f"runs                  {r.runs}")
        for failure in r.failed_runs:
            print(f"  failed: {failure}")
    return 0 if report.ok else 1
