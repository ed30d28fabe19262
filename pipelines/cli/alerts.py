"""Alert commands: `rul alerts list`, `rul alerts ack` and `rul alerts resolve`.

They work on the alert store under the data root (RUL_DATA_DIR: `alerts/alerts.sqlite`);
after a change the Parquet snapshot in the lake is republished, so the warehouse's alert
views follow at once. Unknown ids, illegal transitions and bad filters end with one
`rul: error:` line and exit status 2.

`--by` is free text, so every change made here is recorded as `NAME (os:ACCOUNT)`: the
operating-system account that ran the command is what an audit can rely on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os

from pipelines.cli.common import UserError, print_json_or_nothing


def register(commands: argparse._SubParsersAction) -> None:
    """Add the `alerts` command group to the `rul` parser."""
    alerts = commands.add_parser("alerts", help="list, acknowledge and resolve alerts")
    sub = alerts.add_subparsers(title="commands", required=True, metavar="COMMAND")

    listing = sub.add_parser("list", help="list alerts, oldest first",
                             description="Every filter given must match; times are UTC.")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.add_argument("--site", metavar="S", help="site id, e.g. DC-BKK-01")
    listing.add_argument("--severity", metavar="X", help="warning or critical")
    listing.add_argument("--status", metavar="X", help="open, acknowledged or resolved")
    listing.add_argument("--type", metavar="X", help="alert type, e.g. temperature")
    listing.add_argument("--since", metavar="TS",
                         help="opened at or after, e.g. 2024-06-01 or 2024-06-01T12:00Z")
    listing.set_defaults(command=_list)

    for name, verb, handler in (("ack", "acknowledge", _ack), ("resolve", "resolve", _resolve)):
        cmd = sub.add_parser(name, help=f"{verb} an alert")
        cmd.add_argument("alert_id", metavar="ID", help="alert id (from `rul alerts list`)")
        cmd.add_argument("--by", metavar="NAME", required=True,
                         help="who does it (recorded with your operating-system account)")
        cmd.add_argument("--note", metavar="TEXT", help="why, or what was done")
        cmd.set_defaults(command=handler)


def _layout():
    from core.layout import Layout
    from core.settings import Settings

    return Layout(Settings.from_env().data_dir)


def _check(value: str | None, allowed: tuple[str, ...], flag: str) -> None:
    if value is not None and value not in allowed:
        raise UserError(f"{flag}: expected one of {', '.join(allowed)}, got {value!r}")


def _since(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"--since: expected a date or time like 2024-06-01 or "
                        f"2024-06-01T12:00Z, got {text!r}") from None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _alert_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"ID: expected a whole number, got {text!r}") from None
    if value < 1:
        raise UserError(f"ID: alert ids start at 1, got {value}")
    return value


def _list(args: argparse.Namespace) -> int:
    from alerting.conditions import ALERT_TYPES, SEVERITIES
    from alerting.store import STATUSES, list_alerts

    _check(args.severity, SEVERITIES, "--severity")
    _check(args.status, STATUSES, "--status")
    _check(args.type, tuple(ALERT_TYPES), "--type")
    since = _since(args.since)
    frame = list_alerts(_layout().alerts_db, site=args.site, severity=args.severity,
                        status=args.status, type=args.type, since=since)
    rows = [{k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in row.items()}
            for row in frame.iter_rows(named=True)]
    if print_json_or_nothing(rows, args.json, "no alerts"):
        return 0
    print(f"{'ID':>5}  {'OPENED (UTC)':<16}  {'SEVERITY':<8}  {'STATUS':<12}  {'ENTITY':<28}  "
          "MESSAGE")
    for r in rows:
        entity = r["battery_id"] or r["string_id"] or r["site_id"]
        print(f"{r['alert_id']:>5}  {r['opened_at'][:16].replace('T', ' '):<16}  "
              f"{r['severity']:<8}  {r['status']:<12}  {entity:<28}  {r['message']}")
    return 0


def _os_account() -> str:
    """The account running this command, from the process's real uid (not $USER or $LOGNAME,
    which anyone can set)."""
    import pwd

    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # an unnamed uid (e.g. a container)
        return f"uid {uid}"


def _actor(by: str) -> str:
    """`NAME (os:ACCOUNT)`; the alert engine's reserved name is refused in any case, and so is
    a name that already claims an account."""
    from alerting.store import ENGINE

    name = by.strip()
    if not name or name.casefold() == ENGINE or "(os:" in name:
        raise UserError(f"--by {by!r}: give a person's name (not empty, not {ENGINE!r} in any "
                        "case, no '(os:')")
    return f"{name} (os:{_os_account()})"


def _change(args: argparse.Namespace, verb: str) -> int:
    from alerting import store

    actor = _actor(args.by)
    layout = _layout()
    alert_id = _alert_id(args.alert_id)
    action = store.acknowledge if verb == "acknowledged" else store.resolve
    try:
        row = action(layout.alerts_db, alert_id, actor, args.note)
    except store.AlertError as exc:
        raise UserError(str(exc)) from None
    store.export_snapshot(layout.alerts_db, layout.lake_dir)
    print(f"alert {alert_id} {verb} by {actor}: {row['message']}")
    return 0


def _ack(args: argparse.Namespace) -> int:
    return _change(args, "acknowledged")


def _resolve(args: argparse.Namespace) -> int:
    return _change(args, "resolved")
