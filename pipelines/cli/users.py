"""User commands: `rul users add|remove|passwd|role|list`, the accounts of the dashboards.

They work on the user store under the data root (RUL_DATA_DIR: `auth/users.sqlite`). Changes
are audited with the actor `cli:<OS user>`: whoever can run this can already write the data
folder, so the CLI asks for no sign-in. Passwords never go on the command line (anyone can read
it in `ps`): they are typed twice at a prompt, or piped as one line with `--password-stdin`,
and must pass the password policy (`core.passwords`: no common or name-derived passwords). A
new password or role ends the user's dashboard sessions, as does removal. Unknown users, bad
roles, weak passwords and removing the last admin end with one `rul: error:` line and exit
status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from pipelines.cli.common import UserError, print_json_or_nothing

ROLE_HELP = "viewer, engineer or admin"


def register(commands: argparse._SubParsersAction) -> None:
    """Add the `users` command group to the `rul` parser."""
    users = commands.add_parser("users", help="manage dashboard users and their roles")
    sub = users.add_subparsers(title="commands", required=True, metavar="COMMAND")
    stdin_help = "read the password as one line from stdin instead of prompting"

    add = sub.add_parser("add", help="add a user")
    add.add_argument("name", metavar="NAME", help="1-64 letters, digits, '.', '_' or '-'")
    add.add_argument("--role", metavar="R", required=True, help=ROLE_HELP)
    add.add_argument("--password-stdin", action="store_true", help=stdin_help)
    add.set_defaults(command=_add)

    remove = sub.add_parser("remove", help="remove a user (never the last admin)")
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(command=_remove)

    passwd = sub.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name", metavar="NAME")
    passwd.add_argument("--password-stdin", action="store_true", help=stdin_help)
    passwd.set_defaults(command=_passwd)

    role = sub.add_parser("role", help="change a user's role (never demote the last admin)")
    role.add_argument("name", metavar="NAME")
    role.add_argument("role", metavar="ROLE", help=ROLE_HELP)
    role.set_defaults(command=_role)

    listing = sub.add_parser("list", help="list users, by name (no password hashes)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(command=_list)


def _db():
    from core.layout import Layout
    from core.settings import Settings

    return Layout(Settings.from_env().data_dir).users_db


def _actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (e.g. a container with an unnamed uid)
        return "cli:unknown"


def _password(from_stdin: bool) -> str:
    """One line from stdin, or typed twice at a prompt; never an argument."""
    import getpass

    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise UserError("--password-stdin: no password on stdin")
        return line
    if not sys.stdin.isatty():
        raise UserError("no terminal to prompt for a password: pipe it with --password-stdin")
    try:
        first = getpass.getpass("New password: ")
        again = getpass.getpass("Repeat password: ")
    except EOFError:
        raise UserError("no password given") from None
    if first != again:
        raise UserError("the two passwords differ; nothing was changed")
    return first


def _store(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from core.users import UserStoreError

    try:
        return call(*args, **kwargs)
    except UserStoreError as exc:
        raise UserError(str(exc)) from None


def _add(args: argparse.Namespace) -> int:
    from core import users

    _store(users.check_role, args.role)  # a bad role fails before the password is asked for
    _store(users.check_username, args.name)
    password = _password(args.password_stdin)
    # whoever runs this knows the password: its owner replaces it at the first sign-in
    _store(users.add_user, _db(), args.name, args.role, password, by=_actor(), must_change=True)
    print(f"user {args.name} added ({args.role}); they set their own password at first sign-in")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from core.users import remove_user

    _store(remove_user, _db(), args.name, by=_actor())
    print(f"user {args.name} removed")
    return 0


def _passwd(args: argparse.Namespace) -> int:
    from core.users import get_role, set_password

    db = _db()
    if get_role(db, args.name) is None:  # say so before asking for a password
        raise UserError(f"no such user {args.name!r}")
    _store(set_password, db, args.name, _password(args.password_stdin), by=_actor(),
           must_change=True)
    print(f"password of {args.name} changed; they set their own at the next sign-in")
    return 0


def _role(args: argparse.Namespace) -> int:
    from core.users import set_role

    _store(set_role, _db(), args.name, args.role, by=_actor())
    print(f"user {args.name} is now {args.role}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from core.users import list_users

    rows = list_users(_db())
    if print_json_or_nothing(rows, args.json, "no users"):
        return 0
    width = max(8, *(len(r["username"]) for r in rows))
    print(f"{'USERNAME':<{width}}  {'ROLE':<8}  {'CREATED (UTC)':<16}  UPDATED (UTC)")
    for r in rows:
        print(f"{r['username']:<{width}}  {r['role']:<8}  "
              f"{r['created_at'][:16].replace('T', ' '):<16}  "
              f"{r['updated_at'][:16].replace('T', ' ')}")
    return 0
