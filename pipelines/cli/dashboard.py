"""`rul dashboard`: the Panel dashboards alone, against the data that is already built (the
lake, the scores, the alert store, the simulator's folder). It starts the simulator and
Dagster nothing; `rul demo` runs everything together. On a store with no user yet it creates
`admin` and prints its one-time password (or takes it from RUL_ADMIN_PASSWORD)."""

from __future__ import annotations

import argparse

from pipelines.cli.common import UserError


def register(commands: argparse._SubParsersAction) -> None:
    """Add `rul dashboard` to the `rul` parser."""
    cmd = commands.add_parser("dashboard", help="serve the dashboards (Panel)",
                              description="Serve the dashboards against the existing data; "
                              "Ctrl-C stops them.")
    cmd.add_argument("--port", type=int, default=5006, help="port (default 5006)")
    cmd.add_argument("--address", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1: this machine only)")
    cmd.add_argument("--trusted-proxy", metavar="HOST[:PORT]",
                     help="the public host of a TLS reverse proxy in front of the dashboards: "
                     "client addresses and the scheme are then read from its X-Forwarded-* "
                     "headers (only when nothing but the proxy can reach --address)")
    cmd.set_defaults(command=_dashboard)


def first_admin(settings) -> str | None:
    """Create `admin` on a store with no user; the password to print, if one was generated
    (admin must replace it before doing anything else). RUL_ADMIN_PASSWORD, when set, is used
    instead (never printed) and must pass the password policy like any other."""
    from core import users
    from core.layout import Layout

    try:
        return users.bootstrap_admin(Layout(settings.data_dir).users_db, settings.admin_password)
    except users.UserStoreError as exc:
        raise UserError(f"RUL_ADMIN_PASSWORD: {exc}") from None


def _dashboard(args: argparse.Namespace) -> int:
    from core.layout import Layout
    from core.settings import Settings

    if not 1 <= args.port <= 65535:
        raise UserError(f"--port: expected 1-65535, got {args.port}")
    settings = Settings.from_env()
    layout = Layout(settings.data_dir)
    if not (layout.lake_dir / "sites.parquet").exists():
        raise UserError(f"no fleet data in {layout.lake_dir}: run `make pipeline` (or "
                        "`make demo`) first")
    password = first_admin(settings)
    if password:
        print(f"created user admin with one-time password: {password}  (change it on the "
              "Users page)", flush=True)
    from dashboards.app import serve

    print(f"dashboards on http://{args.address}:{args.port}  (Ctrl-C stops them)", flush=True)
    try:
        serve(settings, args.port, args.address, args.trusted_proxy)
    except OSError as exc:
        raise UserError(f"cannot listen on {args.address}:{args.port}: {exc.strerror}") from None
    except KeyboardInterrupt:
        pass
    return 0
