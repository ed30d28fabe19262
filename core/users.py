"""Dashboard users: who may sign in, with which role, and what each role may do.

One SQLite file (`Layout(data_dir).users_db`, in the private `auth/` folder) kept like the alert
store (WAL, busy timeout, short `BEGIN IMMEDIATE` writes), so the CLI and several dashboards can
change it at once. Passwords are kept only as argon2id hashes. Sign-in is throttled per attempted
name, existing or not, and unknown names cost the same argon2 work, so answers never tell which
names exist. Every change and sign-in goes to `audit`. Times are INTEGER UTC microseconds since
1970; readers get ISO text. Nothing here checks who calls: a dashboard calls `require(...)`
first, and the CLI runs as someone who can already write the data folder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import math
import os
import re
import secrets
import sqlite3
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

READ, EXPORT = "read", "export"  # export: CSV, Excel and the PDF report
ACK_ALERT, RESOLVE_ALERT = "alert.acknowledge", "alert.resolve"
CONTROL_SIMULATOR, MANAGE_USERS = "simulator.control", "users.manage"
ROLES = ("viewer", "engineer", "admin")
_VIEWER = frozenset({READ, EXPORT})
_ENGINEER = _VIEWER | {ACK_ALERT, RESOLVE_ALERT, CONTROL_SIMULATOR}
PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": _VIEWER, "engineer": _ENGINEER, "admin": _ENGINEER | {MANAGE_USERS}}

# OWASP-style throttling of online guessing: 5 wrong passwords for one name within 15 minutes
# lock that name for 5 minutes. A guesser gets about one try a minute; a person who mistypes is
# back within minutes, and nobody outside can keep an account locked for long.
MAX_FAILURES, FAILURE_WINDOW, LOCKOUT = 5, dt.timedelta(minutes=15), dt.timedelta(minutes=5)
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
MIN_SECRET = 32  # characters of a usable cookie secret (token_urlsafe(48) gives 64)
BUSY_TIMEOUT_MS = 30_000  # as the alert store: writers queue behind short transactions
SCHEMA_VERSION = 1
RESERVED = "engine"  # the alert engine's actor in the alert store: no person may take it
OK, BAD_CREDENTIALS, LOCKED = "ok", "bad_credentials", "locked"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_KEY_CHARS = 100  # attempted names are kept this long for throttling and audit
_HASHER = PasswordHasher()  # argon2id with the library's (RFC 9106) defaults

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'engineer', 'admin')),
    password_hash TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    must_change INTEGER NOT NULL DEFAULT 0);
-- 'Ann' and 'ann' would be two accounts to the store but one person to a reader of the audit
CREATE UNIQUE INDEX IF NOT EXISTS users_nocase ON users (username COLLATE NOCASE);
-- failed sign-ins per attempted name (existing or not) inside the window; cleared on success
CREATE TABLE IF NOT EXISTS login_failures (username TEXT NOT NULL, ts INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS login_failures_by_name ON login_failures (username);
CREATE INDEX IF NOT EXISTS login_failures_by_ts ON login_failures (ts);
CREATE TABLE IF NOT EXISTS lockouts (username TEXT PRIMARY KEY, locked_until INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    ts INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT, detail TEXT);
"""


class UserStoreError(ValueError):
    """A request the user store refuses; the message is one line meant for a person."""


class PermissionDenied(UserStoreError):
    """The role does not allow the action."""


@dataclass(frozen=True)
class AuthResult:
    """A sign-in's answer; BAD_CREDENTIALS never says whether the name or the password was wrong."""

    status: str  # OK, BAD_CREDENTIALS or LOCKED
    username: str | None = None  # username, role and must_change only when ok
    role: str | None = None
    must_change: bool = False  # the password was generated or reset: ask for a new one
    retry_after_s: int = 0  # when locked: seconds until the name may try again

    @property
    def ok(self) -> bool:
        return self.status == OK


def allowed(role: str, action: str) -> bool:
    """Whether `role` may do `action`; unknown roles may do nothing."""
    return action in PERMISSIONS.get(role, frozenset())


def require(role: str, action: str, user: str) -> None:
    """Raise PermissionDenied unless `role` may do `action` (call before acting for `user`)."""
    if not allowed(role, action):
        raise PermissionDenied(f"user {user!r} ({role}) may not {action}")


def _connect(db: str | Path) -> sqlite3.Connection:
    """Autocommit connection (transactions are explicit), schema made on first use; the folder
    is created 0o700 and the file 0o600 (SQLite gives -wal the same), so hashes stay private."""
    path = Path(db)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
        conn.execute("PRAGMA journal_mode = WAL")  # persistent: set once, with the schema
        conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} "
                           f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
    return conn


@contextlib.contextmanager
def _write(db: str | Path) -> Iterator[sqlite3.Connection]:
    """One short write transaction; the lock is taken at BEGIN, so writers wait their turn."""
    with contextlib.closing(_connect(db)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("COMMIT")  # not reached on an error: closing then rolls back


def _rows(db: str | Path, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
    with contextlib.closing(_connect(db)) as conn:
        return conn.execute(sql, params).fetchall()


def _us(ts: dt.datetime | None = None) -> int:
    if ts is None:
        return time.time_ns() // 1000
    return ((ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)) - EPOCH) // _US


def _iso(us: int) -> str:
    return (EPOCH + us * _US).isoformat()


def _audit(conn: sqlite3.Connection, ts: int, actor: str, action: str, target: str | None,
           detail: str | None = None) -> None:
    conn.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?)", (ts, actor, action, target, detail))


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


def _hash(password: str) -> str:
    """The argon2id hash of an acceptable password (made before any write lock: ~50 ms)."""
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserStoreError(f"password: use {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return _HASHER.hash(password)


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


def add_user(db: str | Path, username: str, role: str, password: str, *, by: str,
             must_change: bool = False) -> None:
    """Create a user; a name differing only in case from an existing one is refused."""
    name, role, actor = check_username(username), check_role(role), _actor(by)
    digest, t = _hash(password), _us()
    with _write(db) as conn:
        clash = conn.execute("SELECT username FROM users WHERE username = ? COLLATE NOCASE",
                             (name,)).fetchone()
        if clash:
            raise UserStoreError(f"user {clash[0]!r} already exists")
        conn.execute("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)",
                     (name, role, digest, t, t, int(must_change)))
        _audit(conn, t, actor, "user.add", name, f"role={role}")


def remove_user(db: str | Path, username: str, *, by: str) -> None:
    """Delete a user; never the last admin, or nobody could manage users again."""
    actor, t = _actor(by), _us()
    with _write(db) as conn:
        _existing(conn, username, losing_admin="removed")
        conn.execute("DELETE FROM users WHERE username = ?", (username,))
        _audit(conn, t, actor, "user.remove", username)


def set_password(db: str | Path, username: str, password: str, *, by: str,
                 must_change: bool = False) -> None:
    """Replace a password (must_change=True for an admin's reset) and lift any lockout."""
    actor, digest, t = _actor(by), _hash(password), _us()
    with _write(db) as conn:
        _existing(conn, username)
        conn.execute("UPDATE users SET password_hash = ?, updated_at = ?, must_change = ? "
                     "WHERE username = ?", (digest, t, int(must_change), username))
        conn.execute("DELETE FROM login_failures WHERE username = ?", (username,))
        conn.execute("DELETE FROM lockouts WHERE username = ?", (username,))
        _audit(conn, t, actor, "user.password", username)


def set_role(db: str | Path, username: str, role: str, *, by: str) -> None:
    """Change a role; the last admin cannot be demoted."""
    role, actor, t = check_role(role), _actor(by), _us()
    with _write(db) as conn:
        old = _existing(conn, username, losing_admin="" if role == "admin" else "demoted")
        conn.execute("UPDATE users SET role = ?, updated_at = ? WHERE username = ?",
                     (role, t, username))
        _audit(conn, t, actor, "user.role", username, f"{old} -> {role}")


def list_users(db: str | Path) -> list[dict[str, Any]]:
    """Every user by name, without password hashes."""
    rows = _rows(db, "SELECT username, role, created_at, updated_at, must_change FROM users "
                     "ORDER BY username")
    return [dict(r) | {"created_at": _iso(r["created_at"]), "updated_at": _iso(r["updated_at"]),
                       "must_change": bool(r["must_change"])} for r in rows]


def get_role(db: str | Path, username: str) -> str | None:
    """The user's role, None for no such user (a dashboard re-reads it on each action)."""
    rows = _rows(db, "SELECT role FROM users WHERE username = ?", (username,))
    return rows[0][0] if rows else None


@functools.cache
def _dummy_hash() -> str:
    """A hash no password matches, so an unknown name costs a verify like a known one."""
    return _HASHER.hash(secrets.token_urlsafe(32))


def _verify(digest: str, password: str) -> bool:
    try:
        return _HASHER.verify(digest, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(db: str | Path, username: str, password: str, *,
                 now: dt.datetime | None = None) -> AuthResult:
    """Check a sign-in. A locked name is refused without a look at the password; known and
    unknown names fail, count and lock alike. An outdated hash is upgraded on success."""
    t, key = _us(now), str(username)[:_KEY_CHARS]
    lock = _rows(db, "SELECT locked_until FROM lockouts WHERE username = ? AND locked_until > ?",
                 (key, t))
    if lock:
        with _write(db) as conn:
            _audit(conn, t, key, "login.locked", key)
        return AuthResult(LOCKED, retry_after_s=math.ceil((lock[0][0] - t) / 1e6))
    row = next(iter(_rows(db, "SELECT * FROM users WHERE username = ?", (key,))), None)
    # verify outside the write lock (~50 ms); the dummy keeps unknown names as slow
    if row is not None and _verify(row["password_hash"], password):
        old = row["password_hash"]
        new = _HASHER.hash(password) if _HASHER.check_needs_rehash(old) else None
        with _write(db) as conn:
            conn.execute("DELETE FROM login_failures WHERE username = ?", (key,))
            if new:
                conn.execute("UPDATE users SET password_hash = ? WHERE username = ? "
                             "AND password_hash = ?", (new, key, old))
            _audit(conn, t, key, "login.success", key, "hash upgraded" if new else None)
        return AuthResult(OK, username=key, role=row["role"], must_change=bool(row["must_change"]))
    if row is None:
        _verify(_dummy_hash(), password)
    with _write(db) as conn:
        conn.execute("DELETE FROM login_failures WHERE ts <= ?", (t - FAILURE_WINDOW // _US,))
        conn.execute("DELETE FROM lockouts WHERE locked_until <= ?", (t,))
        conn.execute("INSERT INTO login_failures VALUES (?, ?)", (key, t))
        _audit(conn, t, key, "login.failure", key, "wrong password" if row else "no such user")
        failures = conn.execute("SELECT count(*) FROM login_failures WHERE username = ?",
                                (key,)).fetchone()[0]
        if failures < MAX_FAILURES:
            return AuthResult(BAD_CREDENTIALS)
        conn.execute("DELETE FROM login_failures WHERE username = ?", (key,))
        conn.execute("INSERT OR REPLACE INTO lockouts VALUES (?, ?)", (key, t + LOCKOUT // _US))
        _audit(conn, t, key, "login.lockout", key,
               f"{failures} failures within {FAILURE_WINDOW}: locked for {LOCKOUT}")
    return AuthResult(LOCKED, retry_after_s=math.ceil(LOCKOUT.total_seconds()))


def audit_log(db: str | Path, limit: int = 200) -> list[dict[str, Any]]:
    """The latest audit entries, newest first."""
    rows = _rows(db, "SELECT * FROM audit ORDER BY rowid DESC LIMIT ?", (max(0, int(limit)),))
    return [dict(r) | {"ts": _iso(r["ts"])} for r in rows]


def bootstrap_admin(db: str | Path, password: str | None) -> str | None:
    """Create `admin` if there is no user yet, so a fresh install can be signed into. Without a
    password one is generated, to be changed at first sign-in, and returned for the caller to
    show once; None when users existed or the password was given."""
    if _rows(db, "SELECT 1 FROM users LIMIT 1"):
        return None
    generated = secrets.token_urlsafe(12) if password is None else None
    digest, t = _hash(password if generated is None else generated), _us()
    with _write(db) as conn:
        if conn.execute("SELECT 1 FROM users LIMIT 1").fetchone():  # another process was first
            return None
        conn.execute("INSERT INTO users VALUES ('admin', 'admin', ?, ?, ?, ?)",
                     (digest, t, t, int(generated is not None)))
        _audit(conn, t, "bootstrap", "user.add", "admin", "role=admin, first user")
    return generated


def ensure_cookie_secret(path: str | Path) -> str:
    """The secret that signs the dashboards' login cookies: made once, owner-only from its first
    byte (os.open 0o600), published by hard link so two processes starting together agree on
    one secret. A file that others can read is tightened to 0o600."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(secrets.token_urlsafe(48) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # never replaces: the secret published first wins
        finally:
            tmp.unlink(missing_ok=True)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o600)
    secret = path.read_text(encoding="utf-8").strip()
    if len(secret) < MIN_SECRET:
        raise UserStoreError(f"{path}: cookie secret shorter than {MIN_SECRET} characters; "
                             "delete the file to generate a new one")
    return secret
