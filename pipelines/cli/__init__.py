"""`rul`: the command line over the same functions the Dagster assets call. Heavy libraries are
imported inside the commands, so `rul --help` and argument errors answer at once.

Expected problems (bad config, date, step, input file, target or id) end with one line
`rul: error: ...` on stderr and exit status 2; failed pipeline runs exit with 1. Each command
group lives in its own module with a `register(commands)` function.
"""

from __future__ import annotations

import sys

from pipelines.cli import alerts, batch, dashboard, demo, simulate, soak, users
from pipelines.cli.common import Parser, UserError

GROUPS = (batch, simulate, alerts, users, dashboard, soak, demo)


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="rul", description="Thai battery fleet RUL platform.")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(commands)
    args = parser.parse_args(argv)
    from core.settings import SettingsError
    from simulator.config import FleetConfigError

    try:
        return args.command(args)
    except (UserError, SettingsError, FleetConfigError) as exc:
        print(f"rul: error: {exc}", file=sys.stderr)
        return 2

