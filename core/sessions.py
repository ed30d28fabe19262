"""Signing in: password checks throttled per client address, and server-side sessions.

A sign-in is throttled per (attempted name, client address) and per address across all names,
so a guesser locks out only themselves, never the real user signing in from elsewhere; unknown
names cost the same argon2 work as known ones, so answers never tell which names exist.

A session lives in the user store (`sessions` table): the browser's cookie carries only a random
token, the store only its SHA-256, the user, the client address and an absolute expiry
(`SESSION_HOURS` after sign-in, however active the session). Signing out deletes it, and
`core.users` deletes a user's sessions when their password or role changes or they are removed,
so a copied cookie stops working at once and a re-created name finds nothing to revive.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from core import passwords, users
from core.private_files import private_secret

SESSION_HOURS = 8  # one shift: a session left open on a control-room screen ends with it
TOKEN_BYTES = 32
MIN_SECRET = 32  # characters of a usable cookie secret (token_urlsafe(48) gives 64)
# OWASP-style throttling of online guessing: 5 wrong passwords for one name from one address
# within 15 minutes lock that pair for 5 minutes; 20 from one address, whatever the names, lock
# the address for 15 minutes. A guesser gets about one try a minute per name and cannot spray
# many names; the real user, from their own address, is not locked out by someone else.
MAX_FAILURES, FAILURE_WINDOW, LOCKOUT = 5, dt.timedelta(minutes=15), dt.timedelta(minutes=5)
ADDRESS_MAX_FAILURES, ADDRESS_LOCKOUT = 20, dt.timedelta(minutes=15)
OK, BAD_CREDENTIALS, LOCKED = "ok", "bad_credentials", "locked"
_KEY_CHARS = 100  # attempted names and addresses are kept this long for throttling and audit
_US = dt.timedelta(microseconds=1)


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


def _address(address: str | None) -> str:
    return str(address or "unknown")[:_KEY_CHARS]


def _lock_until(db: str | Path, name: str, address: str, t: int) -> int | None:
    """When the (name, address) pair or the address is free again, None if it is now."""
    row = users.query(db, "SELECT max(until) FROM (SELECT locked_until AS until FROM lockouts "
                          "WHERE username = ? AND address = ? UNION ALL SELECT locked_until "
                          "FROM address_lockouts WHERE address = ?) WHERE until > ?",
                      (name, address, address, t))[0]
    return row[0]


def authenticate(db: str | Path, username: str, password: str, address: str, *,
                 now: dt.datetime | None = None) -> AuthResult:
    """Check a sign-in from client `address`. A locked pair or address is refused without a look
    at the password; known and unknown names fail, count and lock alike. An outdated hash is
    upgraded on success."""
    t, name, addr = users.now_us(now), str(username)[:_KEY_CHARS], _address(address)
    until = _lock_until(db, name, addr, t)
    if until is not None:
        with users.transaction(db) as conn:
            users.audit(conn, t, name, "login.locked", name, address=addr)
        return AuthResult(LOCKED, retry_after_s=math.ceil((until - t) / 1e6))
    row = next(iter(users.query(db, "SELECT * FROM users WHERE username = ?", (name,))), None)
    # verify outside the write lock (~50 ms); the dummy keeps unknown names as slow
    if row is not None and passwords.verify(row["password_hash"], password):
        old = row["password_hash"]
        new = passwords.rehash(password) if passwords.needs_rehash(old) else None
        with users.transaction(db) as conn:
            conn.execute("UPDATE login_failures SET pair = 0 WHERE username = ? "
                         "AND address = ?", (name, addr))
            if new:
                conn.execute("UPDATE users SET password_hash = ? WHERE username = ? "
                             "AND password_hash = ?", (new, name, old))
            users.audit(conn, t, name, "login.success", name, "hash upgraded" if new else None,
                        addr)
        return AuthResult(OK, username=name, role=row["role"], must_change=bool(row["must_change"]))
    if row is None:
        passwords.verify(passwords.dummy_hash(), password)
    with users.transaction(db) as conn:
        return _failed(conn, t, name, addr, "wrong password" if row else "no such user")


def _failed(conn: sqlite3.Connection, t: int, name: str, addr: str, why: str) -> AuthResult:
    """Count a failure and lock the address (ceiling reached) or the (name, address) pair."""
    conn.execute("DELETE FROM login_failures WHERE ts <= ?", (t - FAILURE_WINDOW // _US,))
    conn.execute("DELETE FROM lockouts WHERE locked_until <= ?", (t,))
    conn.execute("DELETE FROM address_lockouts WHERE locked_until <= ?", (t,))
    conn.execute("INSERT INTO login_failures VALUES (?, ?, ?, 1)", (name, addr, t))
    users.audit(conn, t, name, "login.failure", name, why, addr)
    count = "SELECT count(*) FROM login_failures WHERE address = ?"
    from_address = conn.execute(count, (addr,)).fetchone()[0]
    for_pair = conn.execute(count + " AND username = ? AND pair = 1", (addr, name)).fetchone()[0]
    if from_address >= ADDRESS_MAX_FAILURES:
        conn.execute("DELETE FROM login_failures WHERE address = ?", (addr,))
        conn.execute("INSERT OR REPLACE INTO address_lockouts VALUES (?, ?)",
                     (addr, t + ADDRESS_LOCKOUT // _US))
        users.audit(conn, t, name, "login.lockout", name, f"{from_address} failures from this "
                    f"address within {FAILURE_WINDOW}: address locked for {ADDRESS_LOCKOUT}", addr)
        return AuthResult(LOCKED, retry_after_s=math.ceil(ADDRESS_LOCKOUT.total_seconds()))
    if for_pair < MAX_FAILURES:
        return AuthResult(BAD_CREDENTIALS)
    conn.execute("UPDATE login_failures SET pair = 0 WHERE username = ? AND address = ?",
                 (name, addr))
    conn.execute("INSERT OR REPLACE INTO lockouts VALUES (?, ?, ?)",
                 (name, addr, t + LOCKOUT // _US))
    users.audit(conn, t, name, "login.lockout", name,
                f"{for_pair} failures within {FAILURE_WINDOW}: locked for {LOCKOUT}", addr)
    return AuthResult(LOCKED, retry_after_s=math.ceil(LOCKOUT.total_seconds()))


@dataclass(frozen=True)
class Account:
    """Who a live session belongs to, as the store holds it now."""

    username: str
    role: str
    must_change: bool


def key(token: str) -> str:
    """The store's key of a session token: its SHA-256 (the token has 256 random bits)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start(db: str | Path, username: str, address: str, *,
          now: dt.datetime | None = None) -> str:
    """A new session for `username`; its token, for the cookie. Expired sessions are purged."""
    token, t = secrets.token_urlsafe(TOKEN_BYTES), users.now_us(now)
    with users.transaction(db) as conn:
        conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (t,))
        conn.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                     (key(token), username, t, t + dt.timedelta(hours=SESSION_HOURS) // _US,
                      _address(address)))
    return token


def resolve(db: str | Path, token: str | None, *,
            now: dt.datetime | None = None) -> Account | None:
    """The account of a live session, None for an unknown, ended or expired token."""
    if not token:
        return None
    rows = users.query(db, "SELECT u.username, u.role, u.must_change FROM sessions s JOIN "
                           "users u ON u.username = s.username WHERE s.key = ? "
                           "AND s.expires_at > ?", (key(token), users.now_us(now)))
    return Account(rows[0][0], rows[0][1], bool(rows[0][2])) if rows else None


def end(db: str | Path, token: str) -> None:
    """Sign out: delete the session (audited when it was live)."""
    t = users.now_us()
    with users.transaction(db) as conn:
        row = conn.execute("SELECT username, address FROM sessions WHERE key = ?",
                           (key(token),)).fetchone()
        if row is not None:
            conn.execute("DELETE FROM sessions WHERE key = ?", (key(token),))
            users.audit(conn, t, row[0], "logout", row[0], address=row[1])


def ensure_cookie_secret(path: str | Path) -> str:
    """The secret that signs the dashboards' session cookies (`core.private_files`): made once,
    owner-only, the same for every process of one data folder."""
    secret = private_secret(path, 48)
    if len(secret) < MIN_SECRET:
        raise users.UserStoreError(f"{path}: cookie secret shorter than {MIN_SECRET} "
                                   "characters; delete the file to generate a new one")
    return secret
