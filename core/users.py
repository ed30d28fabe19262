"""Dashboard users: who may sign in, with which role, and what each role may do.

One SQLite file (`Layout(data_dir).users_db`, in the private `auth/` folder) kept like the alert
store (WAL, busy timeout, short `BEGIN IMMEDIATE` writes), so the CLI and several dashboards can
change it at once. It also holds sign-in throttling and server-side sessions (`core.sessions`):
a password change, a role change or a removal ends the user's sessions in the same transaction.
Passwords follow `core.passwords` and are kept only as argon2id hashes. Every change and sign-in
goes to `audit`. Times are INTEGER UTC microseconds since 1970; readers get ISO text. Nothing
here checks who calls: a dashboard calls `require(...)` first, and the CLI runs as someone who
can already write the data folder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core import passwords
from core.user_schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION

READ, EXPORT = "read", "export"  # export: CSV, Excel and the PDF report
ACK_ALERT, RESOLVE_ALERT = "alert.acknowledge", "alert.resolve"
CONTROL_SIMULATOR, MANAGE_USERS = "simulator.control", "users.manage"
ROLES = ("viewer", "engineer", "admin")
_VIEWER = frozenset({READ, EXPORT})
_ENGINEER = _VIEWER | {ACK_ALERT, RESOLVE_ALERT, CONTROL_SIMULATOR}
PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": _VIEWER, "engineer": _ENGINEER, "admin": _ENGINEER | {MANAGE_USERS}}

BUSY_TIMEOUT_MS = 30_000  # as the alert store: writers queue behind short transactions
RESERVED = "engine"  # the alert engine's actor in the alert store: no person may take it
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)
# the own-password form's wrong current passwords, as sign-in counts them per name and address
WRONG_CURRENT_MAX, WRONG_CURRENT_WINDOW = 5, dt.timedelta(minutes=15)
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


class UserStoreError(ValueError):
    """A request the user store refuses; the message is one line meant for a person."""


class PermissionDenied(UserStoreError):
    """The role does not allow the action."""


def allowed(role: str, action: str) -> bool:
    """Whether `role` may do `action`; unknown roles may do nothing."""
    return action in PERMISSIONS.get(role, frozenset())


def require(role: str, action: str, user: str) -> None:
    """Raise PermissionDenied unless `role` may do `action` (call before acting for `user`)."""
    if not allowed(role, action):
        raise PermissionDenied(f"user {user!r} ({role}) may not {action}")


def _connect(db: str | Path) -> sqlite3.Connection:
    """Autocommit connection (transactions are explicit), schema made or migrated on first use
    (the version is re-read under the write lock: two processes may start together); the folder
    is created 0o700 and the file 0o600 (SQLite gives -wal the same), so hashes stay private."""
    path = Path(db)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
        try:
            conn.execute("PRAGMA journal_mode = WAL")  # persistent: set once, with the schema
            conn.execute("BEGIN IMMEDIATE")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                for statement in (*MIGRATIONS.get(version, ()), *SCHEMA):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.close()  # rolls the migration back whole
            raise
    return conn


@contextlib.contextmanager
def transaction(db: str | Path) -> Iterator[sqlite3.Connection]:
    """One short write transaction; the lock is taken at BEGIN, so writers wait their turn."""
    with contextlib.closing(_connect(db)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("COMMIT")  # not reached on an error: closing then rolls back


def query(db: str | Path, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
    with contextlib.closing(_connect(db)) as conn:
        return conn.execute(sql, params).fetchall()


def now_us(ts: dt.datetime | None = None) -> int:
    """`ts` (now by default; naive means UTC) as the store's integer microseconds."""
    if ts is None:
        return time.time_ns() // 1000
    return ((ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)) - EPOCH) // _US


def to_iso(us: int) -> str:
    return (EPOCH + us * _US).isoformat()


def audit(conn: sqlite3.Connection, ts: int, actor: str, action: str, target: str | None,
          detail: str | None = None, address: str | None = None) -> None:
    conn.execute("INSERT INTO audit (ts, actor, action, target, detail, address) "
                 "VALUES (?, ?, ?, ?, ?, ?)", (ts, actor, action, target, detail, address))


def check_username(name: str) -> str:
    """The name if a new user may take it, else UserStoreError saying why."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UserStoreError(f"username {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    if name.lower() == RESERVED:
        raise UserStoreError(f"username {name!r} is reserved for the alert engine")
    return name


def check_role(role: str) -> str:
    """The role if it is one of ROLES, else UserStoreError listing them."""
    if role not in ROLES:
        raise UserStoreError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
    return role


def _hash(password: str, username: str) -> str:
    """The hash of a password the policy accepts for `username` (made before any write lock)."""
    try:
        return passwords.hash_password(password, username)
    except passwords.PasswordRejected as exc:
        raise UserStoreError(str(exc)) from None


def _actor(by: str) -> str:
    name = (by or "").strip()
    if not name or "\n" in name or len(name) > 200:
        raise UserStoreError(f"actor {by!r}: say who makes the change, on one line")
    return name


def _existing(conn: sqlite3.Connection, username: str, losing_admin: str = "") -> str:
    """The user's role; with `losing_admin` (what would happen), refuse it for the last admin."""
    row = conn.execute("SELECT role FROM users WHERE username = ?", (username,)).fetchone()
    if row is None:
        raise UserStoreError(f"no such user {username!r}")
    admins = [r[0] for r in conn.execute("SELECT username FROM users WHERE role = 'admin'")]
    if losing_admin and admins == [username]:
        raise UserStoreError(f"{username!r} is the last admin and cannot be {losing_admin}: "
                             "make another user admin first")
    return row[0]


def _end_sessions(conn: sqlite3.Connection, username: str, keep: str | None = None) -> None:
    """End every session of `username` except the one stored under key `keep`."""
    conn.execute("DELETE FROM sessions WHERE username = ? AND key IS NOT ?", (username, keep))


def add_user(db: str | Path, username: str, role: str, password: str, *, by: str,
             must_change: bool = False) -> None:
    """Create a user; a name differing only in case from an existing one is refused."""
    name, role, actor = check_username(username), check_role(role), _actor(by)
    digest, t = _hash(password, name), now_us()
    with transaction(db) as conn:
        clash = conn.execute("SELECT username FROM users WHERE username = ? COLLATE NOCASE",
                             (name,)).fetchone()
        if clash:
            raise UserStoreError(f"user {clash[0]!r} already exists")
        conn.execute("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)",
                     (name, role, digest, t, t, int(must_change)))
        audit(conn, t, actor, "user.add", name, f"role={role}")


def remove_user(db: str | Path, username: str, *, by: str) -> None:
    """Delete a user and end their sessions; never the last admin, or nobody could manage
    users again."""
    actor, t = _actor(by), now_us()
    with transaction(db) as conn:
        _existing(conn, username, losing_admin="removed")
        conn.execute("DELETE FROM users WHERE username = ?", (username,))
        _end_sessions(conn, username)
        audit(conn, t, actor, "user.remove", username)


def set_password(db: str | Path, username: str, password: str, *, by: str,
                 must_change: bool = False, keep_session: str | None = None) -> None:
    """Replace a password (must_change=True for an admin's reset), lift any lockout and end
    the user's sessions, except the one stored under `keep_session` (the session that changes
    its own password stays signed in)."""
    actor, digest, t = _actor(by), _hash(password, username), now_us()
    with transaction(db) as conn:
        _existing(conn, username)
        conn.execute("UPDATE users SET password_hash = ?, updated_at = ?, must_change = ? "
                     "WHERE username = ?", (digest, t, int(must_change), username))
        conn.execute("UPDATE login_failures SET pair = 0 WHERE username = ?", (username,))
        conn.execute("DELETE FROM lockouts WHERE username = ?", (username,))
        _end_sessions(conn, username, keep_session)
        audit(conn, t, actor, "user.password", username)


def change_own_password(db: str | Path, username: str, current: str, new: str, *,
                        keep_session: str | None) -> None:
    """A user's own change: the current password must match (argon2, outside the lock) and the
    new one differ from it; the other sessions end, the one stored under `keep_session` stays."""
    row = next(iter(query(db, "SELECT password_hash FROM users WHERE username = ?",
                          (username,))), None)
    if row is None:
        raise UserStoreError(f"no such user {username!r}")
    if not passwords.verify(row["password_hash"], current):
        _wrong_current(db, username)
    if new == current:
        raise UserStoreError("the new password is the current one: choose another")
    set_password(db, username, new, by=username, keep_session=keep_session)


def _wrong_current(db: str | Path, username: str) -> None:
    """Refuse a wrong current password. Whoever holds a session (a tab left open, a copied
    cookie) could otherwise guess the password at argon2's pace: after WRONG_CURRENT_MAX wrong
    ones within WRONG_CURRENT_WINDOW every session of the user ends, and the real user signs in
    again through the throttled sign-in."""
    t = now_us()
    with transaction(db) as conn:
        conn.execute("INSERT INTO login_failures VALUES (?, 'current-password', ?, 1)",
                     (username, t))
        audit(conn, t, username, "user.password.refused", username, "wrong current password")
        wrong = conn.execute("SELECT count(*) FROM login_failures WHERE username = ? AND "
                             "address = 'current-password' AND pair = 1 AND ts > ?",
                             (username, t - WRONG_CURRENT_WINDOW // _US)).fetchone()[0]
        if wrong >= WRONG_CURRENT_MAX:
            conn.execute("UPDATE login_failures SET pair = 0 WHERE username = ? AND "
                         "address = 'current-password'", (username,))
            _end_sessions(conn, username)
            audit(conn, t, username, "user.sessions.ended", username,
                  f"{wrong} wrong current passwords")
    if wrong >= WRONG_CURRENT_MAX:  # raised after the commit: the sessions stay ended
        raise PermissionDenied("too many wrong current passwords: your session has ended, "
                               "sign in again")
    raise UserStoreError("the current password is wrong; nothing was changed")


def set_role(db: str | Path, username: str, role: str, *, by: str) -> None:
    """Change a role and end the user's sessions (they sign in again under the new role); the
    last admin cannot be demoted."""
    role, actor, t = check_role(role), _actor(by), now_us()
    with transaction(db) as conn:
        old = _existing(conn, username, losing_admin="" if role == "admin" else "demoted")
        conn.execute("UPDATE users SET role = ?, updated_at = ? WHERE username = ?",
                     (role, t, username))
        if old != role:
            _end_sessions(conn, username)
        audit(conn, t, actor, "user.role", username, f"{old} -> {role}")


def list_users(db: str | Path) -> list[dict[str, Any]]:
    """Every user by name, without password hashes."""
    rows = query(db, "SELECT username, role, created_at, updated_at, must_change FROM users "
                     "ORDER BY username")
    return [dict(r) | {"created_at": to_iso(r["created_at"]),
                       "updated_at": to_iso(r["updated_at"]),
                       "must_change": bool(r["must_change"])} for r in rows]


def get_role(db: str | Path, username: str) -> str | None:
    """The user's role, None for no such user."""
    rows = query(db, "SELECT role FROM users WHERE username = ?", (username,))
    return rows[0][0] if rows else None


def audit_log(db: str | Path, limit: int = 200) -> list[dict[str, Any]]:
    """The latest audit entries, newest first."""
    rows = query(db, "SELECT * FROM audit ORDER BY rowid DESC LIMIT ?", (max(0, int(limit)),))
    return [dict(r) | {"ts": to_iso(r["ts"])} for r in rows]


def bootstrap_admin(db: str | Path, password: str | None) -> str | None:
    """Create `admin` if there is no user yet, so a fresh install can be signed into. Without a
    password one is generated, to be changed before anything else at first sign-in, and
    returned for the caller to show once; None when users existed or the password was given."""
    if query(db, "SELECT 1 FROM users LIMIT 1"):
        return None
    generated = passwords.generate() if password is None else None
    digest, t = _hash(password if generated is None else generated, "admin"), now_us()
    with transaction(db) as conn:
        if conn.execute("SELECT 1 FROM users LIMIT 1").fetchone():  # another process was first
            return None
        conn.execute("INSERT INTO users VALUES ('admin', 'admin', ?, ?, ?, ?)",
                     (digest, t, t, int(generated is not None)))
        audit(conn, t, "bootstrap", "user.add", "admin", "role=admin, first user")
    return generated
