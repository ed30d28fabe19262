"""The dashboard user store (`core.users`) on a real SQLite file, and `rul users` end to end:
argon2id hashes, sign-in throttling for known and unknown names alike, the last admin kept,
the role permissions, the cookie secret's file mode, the first admin, and one-line CLI errors."""

from __future__ import annotations

import datetime as dt
import io
import json
import sqlite3
import stat

import pytest
from argon2 import PasswordHasher, Type
from test_alerts_cli import rul as run_rul

from core import users
from core.layout import Layout
from core.users import BAD_CREDENTIALS, LOCKED, OK, PermissionDenied, UserStoreError
from pipelines.cli import main

T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
PASSWORD = "correct horse"


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
    monkeypatch.setattr(users, "_HASHER", CheapHasher())
    users._dummy_hash.cache_clear()
    yield users._HASHER
    users._dummy_hash.cache_clear()


@pytest.fixture
def db(tmp_path, hasher):
    path = Layout(tmp_path / "data").users_db
    users.add_user(path, "root", "admin", "root-password", by="test")
    users.add_user(path, "eng", "engineer", PASSWORD, by="test")
    return path


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def stored_hash(db, name: str) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT password_hash FROM users WHERE username = ?",
                            (name,)).fetchone()[0]


def login(db, name: str, password: str, minutes: float = 0.0) -> users.AuthResult:
    return users.authenticate(db, name, password, now=T0 + dt.timedelta(minutes=minutes))


def test_the_hasher_is_argon2id_with_library_defaults():
    default = PasswordHasher()
    assert users._HASHER.type is Type.ID
    assert [getattr(users._HASHER, k) for k in ("time_cost", "memory_cost", "parallelism")] == [
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
        assert result == users.AuthResult(BAD_CREDENTIALS) and not result.ok


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
    ]
    for call, message in cases:
        with pytest.raises(UserStoreError, match=message) as info:
            call()
        assert "\n" not in str(info.value)


def test_five_failures_lock_the_name_for_five_minutes(db):
    assert [login(db, "eng", "guess", minute).status for minute in range(4)] == [
        BAD_CREDENTIALS] * 4
    locked = login(db, "eng", "guess", 4)
    assert (locked.status, locked.retry_after_s) == (LOCKED, 300)
    still = login(db, "eng", PASSWORD, 6)  # the right password does not help while locked
    assert (still.status, still.retry_after_s) == (LOCKED, 180)
    assert login(db, "eng", PASSWORD, 9.01).ok
    actions = [a["action"] for a in users.audit_log(db)[:4]]
    assert actions == ["login.success", "login.locked", "login.lockout", "login.failure"]


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
    assert login(db, "root", "root-password", 5).ok  # other names are not affected


def test_setting_a_password_lifts_the_lockout(db):
    for minute in range(5):
        login(db, "eng", "guess", minute)
    users.set_password(db, "eng", "new password", by="root", must_change=True)
    result = login(db, "eng", "new password", 5)
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
    first = users.ensure_cookie_secret(layout.cookie_secret_path)
    assert len(first) >= 64 and mode(layout.cookie_secret_path) == 0o600
    assert mode(layout.auth_dir) == 0o700
    assert users.ensure_cookie_secret(layout.cookie_secret_path) == first
    layout.cookie_secret_path.chmod(0o644)
    assert users.ensure_cookie_secret(layout.cookie_secret_path) == first
    assert mode(layout.cookie_secret_path) == 0o600
    assert [p.name for p in layout.auth_dir.iterdir()] == ["cookie_secret"]  # no temp left
    layout.cookie_secret_path.write_text("\n")
    with pytest.raises(UserStoreError, match="delete the file"):
        users.ensure_cookie_secret(layout.cookie_secret_path)


def test_bootstrap_admin_creates_the_first_user_once(tmp_path):
    db = Layout(tmp_path / "data").users_db
    generated = users.bootstrap_admin(db, None)
    assert generated and len(generated) >= 16
    result = users.authenticate(db, "admin", generated)
    assert result.ok and result.role == "admin" and result.must_change
    assert users.bootstrap_admin(db, None) is None
    assert users.bootstrap_admin(db, "another password") is None
    assert len(users.list_users(db)) == 1

    given = tmp_path / "other.sqlite"
    assert users.bootstrap_admin(given, "chosen password") is None
    result = users.authenticate(given, "admin", "chosen password")
    assert result.ok and not result.must_change


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
    assert (code, out) == (0, "user somchai added (admin)\n")
    assert rul(capsys, monkeypatch, "users", "add", "vic", "--role", "viewer",
               "--password-stdin", stdin="viewer password\r\n")[0] == 0
    code, out, _ = rul(capsys, monkeypatch, "users", "list", "--json")
    listed = json.loads(out)
    assert [(u["username"], u["role"]) for u in listed] == [("somchai", "admin"),
                                                            ("vic", "viewer")]
    assert users.authenticate(cli_db, "vic", "viewer password").ok
    code, out, _ = rul(capsys, monkeypatch, "users", "list")
    assert code == 0 and out.splitlines()[0].split()[:2] == ["USERNAME", "ROLE"]
    assert len(out.splitlines()) == 3 and "viewer" in out.splitlines()[2]

    assert rul(capsys, monkeypatch, "users", "passwd", "vic", "--password-stdin",
               stdin="second password\n")[:2] == (0, "password of vic changed\n")
    assert users.authenticate(cli_db, "vic", "second password").ok
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
    assert users.authenticate(cli_db, "ann", "typed password").ok
    assert main(["users", "passwd", "ann"]) == 2
    assert "the two passwords differ" in capsys.readouterr().err
    assert users.authenticate(cli_db, "ann", "typed password").ok


def test_cli_errors_are_one_line_with_exit_status_2(cli_db, capsys, monkeypatch):
    rul(capsys, monkeypatch, "users", "add", "root", "--role", "admin", "--password-stdin",
        stdin="root password\n")
    cases = [
        (["add", "bob", "--role", "boss", "--password-stdin"], "good password\n",
         "role: expected one of viewer, engineer, admin, got 'boss'"),
        (["add", "bob", "--role", "viewer", "--password-stdin"], "short\n", "8 to 1024"),
        (["add", "bob", "--role", "viewer", "--password-stdin"], "", "no password on stdin"),
        (["add", "bob", "--role", "viewer"], "", "no terminal to prompt"),
        (["add", "engine", "--role", "viewer", "--password-stdin"], "good password\n",
         "reserved"),
        (["add", "root", "--role", "viewer", "--password-stdin"], "good password\n",
         "'root' already exists"),
        (["passwd", "bob", "--password-stdin"], "good password\n", "no such user 'bob'"),
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
