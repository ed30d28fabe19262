"""The dashboard user store (`core.users`, `core.passwords`, sign-in in `core.sessions`) on a
real SQLite file, and `rul users` end to end: argon2id hashes, the password policy, sign-in
throttling per (name, address) and per address for known and unknown names alike, the last
admin kept, the role permissions, the cookie secret's file mode, the first admin, the migration
of a version-1 store, and one-line CLI errors."""

from __future__ import annotations

import datetime as dt
import io
import json
import sqlite3
import stat

import pytest
from argon2 import PasswordHasher, Type
from test_alerts_cli import rul as run_rul

from core import passwords, sessions, users
from core.layout import Layout
from core.sessions import BAD_CREDENTIALS, LOCKED, OK
from core.users import PermissionDenied, UserStoreError
from pipelines.cli import main

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
PASSWORD = "correct horse"
ROOT_PASSWORD = "quiet orbit mango ladder"
HOME, ELSEWHERE = "10.0.0.7", "192.0.2.66"  # the user's address, a guesser's


class CheapHasher(PasswordHasher):
    """Argon2id with tiny costs, so the many sign-ins below take milliseconds (the real
    parameters are checked by test_the_hasher_is_argon2id_with_library_defaults); counts
    verifies."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified: list[str] = []

    def verify(self, hash: str, password: str) -> bool:
        self.verified.append(hash)
        return super().verify(hash, password)


@pytest.fixture
def hasher(monkeypatch) -> CheapHasher:
    monkeypatch.setattr(passwords, "_HASHER", CheapHasher())
    passwords.dummy_hash.cache_clear()
    yield passwords._HASHER
    passwords.dummy_hash.cache_clear()


@pytest.fixture
def db(tmp_path, hasher):
    path = Layout(tmp_path / "data").users_db
    users.add_user(path, "root", "admin", ROOT_PASSWORD, by="test")
    users.add_user(path, "eng", "engineer", PASSWORD, by="test")
    return path


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def stored_hash(db, name: str) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT password_hash FROM users WHERE username = ?",
                            (name,)).fetchone()[0]


def login(db, name: str, password: str, minutes: float = 0.0,
          address: str = HOME) -> sessions.AuthResult:
    return sessions.authenticate(db, name, password, address,
                                 now=T0 + dt.timedelta(minutes=minutes))


def test_the_hasher_is_argon2id_with_library_defaults():
    default = PasswordHasher()
    assert passwords._HASHER.type is Type.ID
    assert [getattr(passwords._HASHER, k) for k in ("time_cost", "memory_cost", "parallelism")] == [
        getattr(default, k) for k in ("time_cost", "memory_cost", "parallelism")]


def test_passwords_are_argon2id_hashes_and_never_listed(db):
    digest = stored_hash(db, "eng")
    assert digest.startswith("$argon2id$") and PASSWORD not in digest
    assert PasswordHasher().verify(digest, PASSWORD)
    assert mode(db.parent) == 0o700 and mode(db) == 0o600
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    listed = users.list_users(db)
    assert [(u["username"], u["role"], u["must_change"]) for u in listed] == [
        ("eng", "engineer", False), ("root", "admin", False)]
    assert not any("hash" in key for u in listed for key in u)
    assert dt.datetime.fromisoformat(listed[0]["created_at"]).tzinfo == dt.UTC
    assert users.get_role(db, "eng") == "engineer" and users.get_role(db, "nobody") is None


def test_authenticate_good_and_bad(db):
    good = login(db, "eng", PASSWORD)
    assert good.ok and (good.status, good.username, good.role) == (OK, "eng", "engineer")
    for name, password in (("eng", "wrong password"), ("ENG", PASSWORD), ("nobody", PASSWORD)):
        result = login(db, name, password)
        assert result == sessions.AuthResult(BAD_CREDENTIALS) and not result.ok


def test_invalid_input_is_refused_with_one_line(db):
    cases = [
        (lambda: users.add_user(db, "bob", "viewer", "short", by="t"), "8 to 1024 characters"),
        (lambda: users.add_user(db, "bo b", "viewer", PASSWORD, by="t"), "1-64 letters"),
        (lambda: users.add_user(db, "x" * 65, "viewer", PASSWORD, by="t"), "1-64 letters"),
        (lambda: users.add_user(db, "Engine", "viewer", PASSWORD, by="t"), "reserved"),
        (lambda: users.add_user(db, "Eng", "viewer", PASSWORD, by="t"), "'eng' already exists"),
        (lambda: users.add_user(db, "bob", "boss", PASSWORD, by="t"), "expected one of viewer"),
        (lambda: users.add_user(db, "bob", "viewer", PASSWORD, by=" "), "who makes the change"),
        (lambda: users.set_password(db, "nobody", PASSWORD, by="t"), "no such user 'nobody'"),
        (lambda: users.remove_user(db, "nobody", by="t"), "no such user"),
        (lambda: users.add_user(db, "bob", "viewer", "password", by="t"),
         "too easy to guess. This is a top-10 common password."),
        (lambda: users.add_user(db, "somchai", "viewer", "Somchai-2024!", by="t"),
         "contains the user name"),
        (lambda: users.set_password(db, "eng", "batteryfleet", by="t"), "too easy to guess"),
        (lambda: users.set_password(db, "eng", "12345678", by="t"), "top-10 common"),
    ]
    for call, message in cases:
        with pytest.raises(UserStoreError, match=message) as info:
            call()
        assert "\n" not in str(info.value)


def test_the_password_policy_refuses_common_and_name_derived_passwords():
    refused = {("password", "vic"): "top-10 common password",
               ("12345678", "vic"): "top-10 common password",
               ("qwertyuiop", "vic"): "too easy to guess",
               ("ThaiBattery1", "vic"): "too easy to guess",
               ("admin-password-1", "admin"): "contains the user name",
               ("Somchai1985!", "SOMCHAI"): "contains the user name"}
    for (password, name), why in refused.items():
        with pytest.raises(passwords.PasswordRejected, match=why) as info:
            passwords.check(password, name)
        assert "\n" not in str(info.value) and str(info.value).startswith("password: ")
    for password in ("correct horse", "violet harbour seven kites", "x" * 8 + "Q7#kd!2mZ"):
        passwords.check(password, "vic")
    for _ in range(200):  # the one-time password always passes
        passwords.check(passwords.generate(), "admin")
    passwords.check("a" * 60 + "Zq8#vL2!mK" * 96, "vic")  # 1020 characters: judged by the start
    with pytest.raises(passwords.PasswordRejected, match="8 to 1024"):
        passwords.check("Zq8#vL2!mK" * 103, "vic")


V1_SCHEMA = """
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


def test_a_version_1_store_is_migrated_and_keeps_its_users(tmp_path, hasher):
    db = Layout(tmp_path / "data").users_db
    db.parent.mkdir(parents=True)
    digest = PasswordHasher().hash(PASSWORD)
    with sqlite3.connect(db) as conn:
        conn.executescript(V1_SCHEMA + "PRAGMA user_version = 1;")
        conn.execute("INSERT INTO users VALUES ('eng', 'engineer', ?, 1, 1, 0)", (digest,))
        conn.execute("INSERT INTO login_failures VALUES ('eng', 1)")
        conn.execute("INSERT INTO lockouts VALUES ('eng', 9e18)")  # locked "forever" in v1
        conn.execute("INSERT INTO audit VALUES (1, 'cli:ops', 'user.add', 'eng', 'role=engineer')")
    assert [(u["username"], u["role"]) for u in users.list_users(db)] == [("eng", "engineer")]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == users.SCHEMA_VERSION == 2
    assert login(db, "eng", PASSWORD).ok  # the old per-name lock is gone with its table
    token = sessions.start(db, "eng", HOME)
    assert sessions.resolve(db, token).username == "eng"
    audit = users.audit_log(db)
    assert [(a["action"], a["address"]) for a in audit] == [
        ("login.success", HOME), ("user.add", None)]


def test_five_failures_lock_the_name_from_that_address_for_five_minutes(db):
    assert [login(db, "eng", "guess", minute).status for minute in range(4)] == [
        BAD_CREDENTIALS] * 4
    locked = login(db, "eng", "guess", 4)
    assert (locked.status, locked.retry_after_s) == (LOCKED, 300)
    still = login(db, "eng", PASSWORD, 6)  # the right password does not help while locked
    assert (still.status, still.retry_after_s) == (LOCKED, 180)
    assert login(db, "eng", PASSWORD, 9.01).ok
    audit = users.audit_log(db)[:4]
    assert [a["action"] for a in audit] == ["login.success", "login.locked", "login.lockout",
                                            "login.failure"]
    assert {a["address"] for a in audit} == {HOME}


def test_a_guesser_elsewhere_cannot_lock_the_user_out(db):
    """The denial of service of the security probe: guessing from one address locks that
    address out of the name, while the real user signs in from theirs."""
    statuses = [login(db, "eng", "guess", m / 10, ELSEWHERE).status for m in range(8)]
    assert statuses == [BAD_CREDENTIALS] * 4 + [LOCKED] * 4
    assert login(db, "eng", PASSWORD, 1, HOME).ok
    assert login(db, "eng", PASSWORD, 1, ELSEWHERE).status == LOCKED  # the guesser stays out
    locked = [a for a in users.audit_log(db) if a["action"] == "login.lockout"]
    assert [(a["target"], a["address"]) for a in locked] == [("eng", ELSEWHERE)]


def test_one_address_is_capped_across_all_names(db):
    """Spraying many names from one address: 20 failures within 15 minutes lock the address
    for every name (the pair limit alone would allow 4 tries per name)."""
    statuses = [login(db, f"user{i}", "guess", i / 10, ELSEWHERE).status for i in range(19)]
    assert statuses == [BAD_CREDENTIALS] * 19
    last = login(db, "user19", "guess", 2, ELSEWHERE)
    assert (last.status, last.retry_after_s) == (LOCKED, 900)
    assert login(db, "eng", PASSWORD, 3, ELSEWHERE).status == LOCKED
    assert login(db, "eng", PASSWORD, 3, HOME).ok
    assert login(db, "eng", PASSWORD, 17.1, ELSEWHERE).ok  # the address lock ends
    detail = next(a for a in users.audit_log(db) if a["action"] == "login.lockout")["detail"]
    assert detail.startswith("20 failures from this address")


def test_locking_each_name_in_turn_still_counts_toward_the_address_cap(db):
    """5 tries per name lock only that pair, but the tries stay in the address's count: a
    sprayer of many names is stopped at 20 failures all the same."""
    results = [login(db, f"user{i // 5}", "guess", i / 10, ELSEWHERE) for i in range(20)]
    assert [r.status for r in results].count(BAD_CREDENTIALS) == 16  # 3 pairs locked, then
    assert (results[-1].status, results[-1].retry_after_s) == (LOCKED, 900)  # the cap
    assert login(db, "user9", "guess", 2.1, ELSEWHERE).status == LOCKED  # a fresh name too
    assert login(db, "eng", PASSWORD, 2.2, HOME).ok


def test_success_resets_and_old_failures_expire(db):
    for minute in range(4):
        login(db, "eng", "guess", minute)
    assert login(db, "eng", PASSWORD, 5).ok
    assert [login(db, "eng", "guess", 6 + m).status for m in range(4)] == [BAD_CREDENTIALS] * 4
    # failures older than 15 minutes no longer count: at 21.5 the one at minute 6 has expired
    assert login(db, "eng", "guess", 21.5).status == BAD_CREDENTIALS
    assert login(db, "eng", "guess", 21.9).status == LOCKED


def test_unknown_names_are_throttled_and_cost_a_verify(db, hasher):
    statuses = [login(db, "ghost", "guess", m).status for m in range(6)]
    assert statuses == [BAD_CREDENTIALS] * 4 + [LOCKED] * 2  # the 6th is refused unverified
    assert len(hasher.verified) == 5 and len(set(hasher.verified)) == 1
    assert hasher.verified[0].startswith("$argon2id$")
    assert [login(db, "eng", "guess", m).status for m in range(6)] == statuses  # same answers
    assert len(hasher.verified) == 10
    audit = [a for a in users.audit_log(db) if a["actor"] == "ghost"]
    assert [a["action"] for a in audit[:3]] == ["login.locked", "login.lockout", "login.failure"]
    assert audit[2]["detail"] == "no such user" and audit[2]["target"] == "ghost"
    assert login(db, "root", ROOT_PASSWORD, 5).ok  # other names are not affected


def test_setting_a_password_lifts_the_lockout(db):
    for minute in range(5):
        login(db, "eng", "guess", minute)
    users.set_password(db, "eng", "saffron comet idle brook", by="root", must_change=True)
    result = login(db, "eng", "saffron comet idle brook", 5)
    assert result.ok and result.must_change


def test_outdated_hash_is_upgraded_at_sign_in(db, hasher):
    weak = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1).hash(PASSWORD)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE users SET password_hash = ? WHERE username = 'eng'", (weak,))
    assert login(db, "eng", PASSWORD).ok
    upgraded = stored_hash(db, "eng")
    assert upgraded != weak and not hasher.check_needs_rehash(upgraded)
    assert users.audit_log(db, limit=1)[0]["detail"] == "hash upgraded"


def test_the_last_admin_is_kept(db):
    with pytest.raises(UserStoreError, match="'root' is the last admin and cannot be removed"):
        users.remove_user(db, "root", by="root")
    with pytest.raises(UserStoreError, match="cannot be demoted"):
        users.set_role(db, "root", "viewer", by="root")
    users.set_role(db, "root", "admin", by="root")  # staying admin is fine
    users.set_role(db, "eng", "admin", by="root")
    users.set_role(db, "root", "viewer", by="eng")
    users.remove_user(db, "root", by="eng")
    assert [u["username"] for u in users.list_users(db)] == ["eng"]
    audit = users.audit_log(db)
    assert [(a["actor"], a["action"], a["target"]) for a in audit[:3]] == [
        ("eng", "user.remove", "root"), ("eng", "user.role", "root"),
        ("root", "user.role", "eng")]
    assert audit[1]["detail"] == "admin -> viewer"
    assert dt.datetime.fromisoformat(audit[0]["ts"]).tzinfo == dt.UTC


def test_permissions():
    assert users.ROLES == tuple(users.PERMISSIONS) == ("viewer", "engineer", "admin")
    assert users.PERMISSIONS["viewer"] == {"read", "export"}
    assert users.PERMISSIONS["engineer"] == {"read", "export", "alert.acknowledge",
                                             "alert.resolve", "simulator.control"}
    assert users.PERMISSIONS["admin"] == users.PERMISSIONS["engineer"] | {"users.manage"}
    assert not users.allowed("viewer", users.ACK_ALERT)
    assert users.allowed("engineer", users.ACK_ALERT)
    assert [r for r in users.ROLES if users.allowed(r, users.MANAGE_USERS)] == ["admin"]
    assert not users.allowed("superuser", users.READ)
    users.require("engineer", users.RESOLVE_ALERT, "eng")
    with pytest.raises(PermissionDenied) as info:
        users.require("viewer", users.ACK_ALERT, "vic")
    assert str(info.value) == "user 'vic' (viewer) may not alert.acknowledge"
    assert isinstance(info.value, UserStoreError)


def test_cookie_secret_is_private_and_stable(tmp_path):
    layout = Layout(tmp_path / "data")
    first = sessions.ensure_cookie_secret(layout.cookie_secret_path)
    assert len(first) >= 64 and mode(layout.cookie_secret_path) == 0o600
    assert mode(layout.auth_dir) == 0o700
    assert sessions.ensure_cookie_secret(layout.cookie_secret_path) == first
    layout.cookie_secret_path.chmod(0o644)
    assert sessions.ensure_cookie_secret(layout.cookie_secret_path) == first
    assert mode(layout.cookie_secret_path) == 0o600
    assert [p.name for p in layout.auth_dir.iterdir()] == ["cookie_secret"]  # no temp left
    layout.cookie_secret_path.write_text("\n")
    with pytest.raises(UserStoreError, match="delete the file"):
        sessions.ensure_cookie_secret(layout.cookie_secret_path)


def test_bootstrap_admin_creates_the_first_user_once(tmp_path):
    db = Layout(tmp_path / "data").users_db
    generated = users.bootstrap_admin(db, None)
    assert generated and len(generated) >= 16
    result = sessions.authenticate(db, "admin", generated, HOME)
    assert result.ok and result.role == "admin" and result.must_change
    assert users.bootstrap_admin(db, None) is None
    assert users.bootstrap_admin(db, "another password") is None
    assert len(users.list_users(db)) == 1

    given = tmp_path / "other.sqlite"
    assert users.bootstrap_admin(given, "chosen password") is None
    result = sessions.authenticate(given, "admin", "chosen password", HOME)
    assert result.ok and not result.must_change
    with pytest.raises(UserStoreError, match="top-10 common password"):
        users.bootstrap_admin(tmp_path / "third.sqlite", "password")  # RUL_ADMIN_PASSWORD too


# --- rul users ------------------------------------------------------------------------------


@pytest.fixture
def cli_db(tmp_path, monkeypatch, hasher):
    monkeypatch.setenv("RUL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr("getpass.getuser", lambda: "ops")
    return Layout(tmp_path / "data").users_db


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def rul(capsys, monkeypatch, *args: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return run_rul(capsys, *args)


def test_cli_add_list_passwd_role_remove(cli_db, capsys, monkeypatch):
    code, out, _ = rul(capsys, monkeypatch, "users", "add", "somchai", "--role", "admin",
                       "--password-stdin", stdin="first password\n")
    assert (code, out) == (
        0, "user somchai added (admin); they set their own password at first sign-in\n")
    assert rul(capsys, monkeypatch, "users", "add", "vic", "--role", "viewer",
               "--password-stdin", stdin="viewer password\r\n")[0] == 0
    code, out, _ = rul(capsys, monkeypatch, "users", "list", "--json")
    listed = json.loads(out)
    assert [(u["username"], u["role"]) for u in listed] == [("somchai", "admin"),
                                                            ("vic", "viewer")]
    assert sessions.authenticate(cli_db, "vic", "viewer password", HOME).must_change
    assert all(u["must_change"] for u in listed)  # the operator knows these passwords
    code, out, _ = rul(capsys, monkeypatch, "users", "list")
    assert code == 0 and out.splitlines()[0].split()[:2] == ["USERNAME", "ROLE"]
    assert len(out.splitlines()) == 3 and "viewer" in out.splitlines()[2]

    assert rul(capsys, monkeypatch, "users", "passwd", "vic", "--password-stdin",
               stdin="second password\n")[:2] == (
        0, "password of vic changed; they set their own at the next sign-in\n")
    assert sessions.authenticate(cli_db, "vic", "second password", HOME).ok
    assert rul(capsys, monkeypatch, "users", "role", "vic", "engineer")[:2] == (
        0, "user vic is now engineer\n")
    assert rul(capsys, monkeypatch, "users", "remove", "vic")[:2] == (0, "user vic removed\n")
    assert users.get_role(cli_db, "vic") is None
    audit = users.audit_log(cli_db)
    assert {a["actor"] for a in audit if a["action"].startswith("user.")} == {"cli:ops"}


def test_cli_prompts_twice_on_a_terminal(cli_db, capsys, monkeypatch):
    answers = iter(["typed password", "typed password", "one password", "other password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr("sys.stdin", Terminal())
    assert main(["users", "add", "ann", "--role", "engineer"]) == 0
    assert sessions.authenticate(cli_db, "ann", "typed password", HOME).ok
    assert main(["users", "passwd", "ann"]) == 2
    assert "the two passwords differ" in capsys.readouterr().err
    assert sessions.authenticate(cli_db, "ann", "typed password", HOME).ok


def test_cli_errors_are_one_line_with_exit_status_2(cli_db, capsys, monkeypatch):
    rul(capsys, monkeypatch, "users", "add", "root", "--role", "admin", "--password-stdin",
        stdin="tundra pepper velvet oak\n")
    cases = [
        (["add", "bob", "--role", "boss", "--password-stdin"], "ember quartz hollow rain\n",
         "role: expected one of viewer, engineer, admin, got 'boss'"),
        (["add", "bob", "--role", "viewer", "--password-stdin"], "short\n", "8 to 1024"),
        (["add", "bob", "--role", "viewer", "--password-stdin"], "12345678\n",
         "too easy to guess. This is a top-10 common password."),
        (["add", "bob", "--role", "viewer", "--password-stdin"], "bob-and-his-keys\n",
         "contains the user name"),
        (["add", "bob", "--role", "viewer", "--password-stdin"], "", "no password on stdin"),
        (["add", "bob", "--role", "viewer"], "", "no terminal to prompt"),
        (["add", "engine", "--role", "viewer", "--password-stdin"], "ember quartz hollow rain\n",
         "reserved"),
        (["add", "root", "--role", "viewer", "--password-stdin"], "ember quartz hollow rain\n",
         "'root' already exists"),
        (["passwd", "bob", "--password-stdin"], "ember quartz hollow rain\n", "no such user 'bob'"),
        (["role", "root", "viewer"], "", "last admin and cannot be demoted"),
        (["role", "root", "boss"], "", "expected one of"),
        (["remove", "root"], "", "last admin and cannot be removed"),
        (["add", "bob"], "", "the following arguments are required: --role"),
    ]
    for args, stdin, message in cases:
        code, out, err = rul(capsys, monkeypatch, "users", *args, stdin=stdin)
        assert code == 2 and out == "", args
        assert err.startswith("rul: error: ") and message in err, (args, err)
        assert err.count("\n") == 1 and "Traceback" not in err
    assert [u["username"] for u in users.list_users(cli_db)] == ["root"]
