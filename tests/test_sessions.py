"""Server-side sessions (`core.sessions`, `dashboards.auth`, `dashboards.actions`): on the store,
and over HTTP against `rul dashboard` serving a real data folder, as the security probe did it:
a cookie copied before sign-out, a password change, a role change or the removal and
re-creation of its user is refused (redirected to /login); a sign-in only ever redirects to the
app's own pages, through the real sign-in form; an ended session, or a one-time password, can
do nothing through the actions a page's websocket calls."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import re
import sqlite3
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

import pytest
from dashboard_data import PASSWORDS, clone, shared_dashboard
from local_servers import dashboard

from core import sessions, users
from core.layout import Layout
from dashboards import actions
from dashboards.actions import Actor
from dashboards.auth import COOKIE, session_token

STRONG = "walnut signal frozen tide"
OTHER = "ember quartz hollow rain"


# --- on the store ---------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path):
    path = Layout(tmp_path / "data").users_db
    users.add_user(path, "root", "admin", PASSWORDS["admin"], by="test")
    users.add_user(path, "eng", "engineer", PASSWORDS["eng"], by="test")
    return path


def test_the_store_keeps_a_hash_of_the_token_until_sign_out_or_expiry(db):
    t0 = dt.datetime(2025, 3, 1, 9, tzinfo=dt.UTC)
    token = sessions.start(db, "eng", "10.0.0.7", now=t0)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT key, username, address FROM sessions").fetchall()
    assert rows == [(hashlib.sha256(token.encode()).hexdigest(), "eng", "10.0.0.7")]
    assert len(token) >= 43 and token not in str(rows)
    assert sessions.resolve(db, token, now=t0 + dt.timedelta(hours=7.99)).username == "eng"
    assert sessions.resolve(db, token, now=t0 + dt.timedelta(hours=8)) is None  # absolute
    later = sessions.start(db, "eng", "10.0.0.7")
    assert sessions.resolve(db, "made-up") is None and sessions.resolve(db, None) is None
    sessions.end(db, later)
    assert sessions.resolve(db, later) is None
    assert users.audit_log(db, 1)[0] | {"ts": None} == {
        "ts": None, "actor": "eng", "action": "logout", "target": "eng", "detail": None,
        "address": "10.0.0.7"}


def test_password_role_changes_and_removal_end_the_users_sessions(db):
    first, second = sessions.start(db, "eng", "a"), sessions.start(db, "eng", "b")
    admin = sessions.start(db, "root", "c")
    users.set_password(db, "eng", STRONG, by="root", must_change=True)  # an admin's reset
    assert sessions.resolve(db, first) is None and sessions.resolve(db, second) is None
    assert sessions.resolve(db, admin).username == "root"  # other users keep theirs

    first, second = sessions.start(db, "eng", "a"), sessions.start(db, "eng", "b")
    users.change_own_password(db, "eng", STRONG, OTHER, keep_session=sessions.key(first))
    assert sessions.resolve(db, first) == sessions.Account("eng", "engineer", False)
    assert sessions.resolve(db, second) is None

    users.set_role(db, "eng", "engineer", by="root")  # no change: nothing ends
    assert sessions.resolve(db, first) is not None
    users.set_role(db, "eng", "viewer", by="root")
    assert sessions.resolve(db, first) is None

    old = sessions.start(db, "eng", "a")
    users.remove_user(db, "eng", by="root")
    users.add_user(db, "eng", "admin", OTHER, by="root")  # the same name, re-created
    assert sessions.resolve(db, old) is None


def test_the_own_change_needs_the_current_password(db):
    keep = sessions.key(sessions.start(db, "eng", "a"))
    with pytest.raises(users.UserStoreError, match="current password is wrong"):
        users.change_own_password(db, "eng", "not it at all", STRONG, keep_session=keep)
    with pytest.raises(users.UserStoreError, match="is the current one"):
        users.change_own_password(db, "eng", PASSWORDS["eng"], PASSWORDS["eng"], keep_session=keep)
    with pytest.raises(users.UserStoreError, match="too easy to guess"):
        users.change_own_password(db, "eng", PASSWORDS["eng"], "password1", keep_session=keep)
    assert sessions.authenticate(db, "eng", PASSWORDS["eng"], "a").ok  # nothing changed
    assert users.audit_log(db)[1]["action"] == "user.password.refused"


def test_guessing_the_current_password_ends_the_sessions(db):
    """A tab left open is no password oracle: the fifth wrong current password within 15
    minutes ends every session of the user, and the right one cannot be tried after it."""
    token = sessions.start(db, "eng", "a")
    keep = sessions.key(token)
    for _ in range(users.WRONG_CURRENT_MAX - 1):
        with pytest.raises(users.UserStoreError, match="current password is wrong"):
            users.change_own_password(db, "eng", "a wrong guess", STRONG, keep_session=keep)
    assert sessions.resolve(db, token) is not None
    with pytest.raises(users.PermissionDenied, match="session has ended"):
        users.change_own_password(db, "eng", "a wrong guess", STRONG, keep_session=keep)
    assert sessions.resolve(db, token) is None
    with pytest.raises(users.PermissionDenied, match="session has ended"):
        actions.change_own_password(db, Actor("eng", token), PASSWORDS["eng"], STRONG)
    assert sessions.authenticate(db, "eng", PASSWORDS["eng"], "a").ok  # sign-in still works


def test_an_ended_session_can_no_longer_act(db):
    """A tab left open after sign-out: its page still holds the Actor, the store does not."""
    root = Actor("root", sessions.start(db, "root", "a"))
    actions.add_user(db, root, "vic", "viewer", STRONG)
    sessions.end(db, root.token)
    refused = [
        lambda: actions.add_user(db, root, "mallory", "admin", OTHER),
        lambda: actions.set_role(db, root, "vic", "admin"),
        lambda: actions.remove_user(db, root, "vic"),
        lambda: actions.set_password(db, root, "vic", OTHER),
        lambda: actions.change_own_password(db, root, PASSWORDS["admin"], OTHER),
        lambda: actions.acknowledge_alert(None, db, root, 1, "seen"),
        lambda: actions.resolve_alert(None, db, root, 1, None),
        lambda: actions.apply_scenario(None, db, root, "hvac_failure", "DC-BKK-01", None, {}),
        lambda: actions.clear_scenarios(None, db, root),
        lambda: actions.adjust(None, db, root, "DC-BKK-01", {"temperature": 2.0}, False),
        lambda: actions.start_simulator(None, db, root),
        lambda: actions.stop_simulator(None, db, root),
        # a bare name, or another user's live session under this name, is no session either
        lambda: actions.add_user(db, "root", "mallory", "admin", OTHER),
        lambda: actions.add_user(db, Actor("root", sessions.start(db, "eng", "a")),
                                 "mallory", "admin", OTHER),
    ]
    for action in refused:
        with pytest.raises(users.PermissionDenied, match="session has ended"):
            action()
    assert users.get_role(db, "vic") == "viewer" and users.get_role(db, "mallory") is None


def test_a_one_time_password_allows_nothing_but_its_own_change(tmp_path):
    db = Layout(tmp_path / "data").users_db
    generated = users.bootstrap_admin(db, None)
    users.add_user(db, "eng", "engineer", OTHER, by="test")
    admin = Actor("admin", sessions.start(db, "admin", "a"))
    other = sessions.start(db, "admin", "b")
    for action in (lambda: actions.add_user(db, admin, "vic", "viewer", STRONG),
                   lambda: actions.set_password(db, admin, "eng", STRONG),
                   lambda: actions.set_role(db, admin, "eng", "viewer"),
                   lambda: actions.acknowledge_alert(None, db, admin, 1, None),
                   lambda: actions.stop_simulator(None, db, admin)):
        with pytest.raises(users.PermissionDenied, match="set your own password first"):
            action()
    with pytest.raises(users.UserStoreError, match="current password is wrong"):
        actions.change_own_password(db, admin, "a wrong guess", STRONG)
    actions.change_own_password(db, admin, generated, STRONG)
    assert sessions.resolve(db, other) is None  # the other session ended, this one did not
    actions.add_user(db, admin, "vic", "viewer", OTHER)
    assert users.get_role(db, "vic") == "viewer"


# --- over HTTP, against `rul dashboard` ------------------------------------------------------


@pytest.fixture(scope="module")
def dash(tmp_path_factory):
    return clone(shared_dashboard(tmp_path_factory), tmp_path_factory.mktemp("sessions"))


@pytest.fixture(scope="module")
def port(dash, tmp_path_factory):
    yield from dashboard(dash.env, tmp_path_factory.getbasetemp() / "sessions-server.log")


class Answer:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status, self.location = response.status, response.getheader("Location", "")
        self.cookies = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            self.cookies.load(header)
        self.text = response.read().decode("utf-8", "replace")


def request(port: int, method: str, path: str, cookies: dict[str, str] | None = None,
            form: dict[str, str] | None = None, extra: dict[str, str] | None = None) -> Answer:
    """One request, no redirect followed, with exactly the cookies given (a copied cookie)
    and any `extra` headers (a proxy's)."""
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())}
    headers |= extra or {}
    body = urlencode(form) if form is not None else None
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers)
        return Answer(conn.getresponse())
    finally:
        conn.close()


def sign_in(port: int, user: str, password: str | None = None, next_: str = "/admin",
            cookies: dict[str, str] | None = None, extra: dict[str, str] | None = None,
            ) -> tuple[Answer, dict[str, str]]:
    """Through the real form: GET /login for the _xsrf cookie and field, POST it back (with
    the browser's other `cookies`, if any)."""
    page = request(port, "GET", "/login", extra=extra)
    field = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    xsrf = (cookies or {}) | {"_xsrf": page.cookies["_xsrf"].value}
    answer = request(port, "POST", "/login?" + urlencode({"next": next_}), xsrf,
                     {"username": user, "password": PASSWORDS[user] if password is None
                      else password, "_xsrf": field}, extra)
    return answer, {k: m.value for k, m in answer.cookies.items() if k != "_xsrf"}


def signed_in(port: int, cookies: dict[str, str]) -> bool:
    """Whether the server lets these cookies open a page (else it sends them to /login)."""
    answer = request(port, "GET", "/admin", cookies)
    if answer.status == 200:
        return True
    assert answer.status == 302 and re.match(r"\.?/login\?", answer.location), answer.location
    return False


def test_a_copied_cookie_is_refused_after_sign_out(port):
    _, cookies = sign_in(port, "vic")
    copy = dict(cookies)
    assert signed_in(port, cookies)
    request(port, "GET", "/logout", cookies)
    assert not signed_in(port, copy)


def test_signing_in_again_replaces_the_browsers_session(port):
    _, first = sign_in(port, "vic")
    _, second = sign_in(port, "vic", cookies=first)
    assert second != first and signed_in(port, second) and not signed_in(port, first)


def test_a_copied_cookie_is_refused_after_a_password_change(port, dash):
    db = dash.layout.users_db
    _, copy = sign_in(port, "vic")
    users.set_password(db, "vic", STRONG, by="admin", must_change=True)  # an admin's reset
    assert not signed_in(port, copy)
    _, changer = sign_in(port, "vic", STRONG)
    _, other = sign_in(port, "vic", STRONG)
    token = session_token(changer[COOKIE], sessions.ensure_cookie_secret(
        dash.layout.cookie_secret_path))
    actions.change_own_password(db, Actor("vic", token), STRONG, PASSWORDS["vic"])
    assert signed_in(port, changer) and not signed_in(port, other)


def test_a_removed_and_recreated_name_does_not_revive_old_cookies(port, dash):
    db = dash.layout.users_db
    users.add_user(db, "temp", "engineer", OTHER, by="test")
    _, copy = sign_in(port, "temp", OTHER)
    assert signed_in(port, copy)
    users.remove_user(db, "temp", by="test")
    users.add_user(db, "temp", "admin", OTHER, by="test")
    assert not signed_in(port, copy)


def test_a_role_change_ends_the_session(port, dash):
    _, copy = sign_in(port, "eng")
    users.set_role(dash.layout.users_db, "eng", "viewer", by="test")
    try:
        assert not signed_in(port, copy)
    finally:
        users.set_role(dash.layout.users_db, "eng", "engineer", by="test")


@pytest.mark.parametrize(("next_", "location"), [
    ("/\\attacker.example/", "/fleet"),  # the probe's finding
    ("//attacker.example/", "/fleet"),
    ("https://attacker.example/fleet", "/fleet"),
    ("/\\/attacker.example", "/fleet"),
    ("/fleet/../\\attacker.example", "/fleet"),
    ("/logout", "/fleet"),
    ("/battery?id=DC-BKK-01-S1-B03", "/battery?id=DC-BKK-01-S1-B03"),
    ("/alerts?battery=x&status=open", "/alerts?battery=x&status=open"),
    ("/site?id=<script>", "/site"),
    ("/", "/"),
])
def test_sign_in_redirects_only_to_the_apps_own_pages(port, next_, location):
    answer, _ = sign_in(port, "vic", next_=next_)
    assert answer.status == 302 and answer.location == location
    assert urlsplit(answer.location).netloc == ""


def test_sign_in_records_the_client_address(port, dash):
    sign_in(port, "vic")
    entry = next(a for a in users.audit_log(dash.layout.users_db) if a["actor"] == "vic")
    assert (entry["action"], entry["address"]) == ("login.success", "127.0.0.1")



def test_behind_a_trusted_proxy_each_client_is_throttled_on_its_own(dash, tmp_path_factory):
    """Behind a TLS proxy every request comes from the proxy's address: with --trusted-proxy
    the client's own address (X-Real-IP) is counted, so a guesser behind the proxy locks out
    only itself, and the session cookie is Secure once the proxy says the browser uses HTTPS."""
    served = dashboard(dash.env, tmp_path_factory.getbasetemp() / "proxy-server.log",
                       "--trusted-proxy", "dashboards.example:443")
    port = next(served)
    guesser = {"X-Real-IP": "198.51.100.7", "X-Forwarded-Proto": "https"}
    user = {"X-Real-IP": "198.51.100.8", "X-Forwarded-Proto": "https"}
    try:
        for _ in range(sessions.MAX_FAILURES):
            answer, _ = sign_in(port, "eng", "a wrong guess", extra=guesser)
        assert "Too many failed sign-ins" in answer.text
        answer, cookies = sign_in(port, "eng", extra=user)
        assert answer.status == 302 and cookies
        assert answer.cookies[COOKIE]["secure"] is True
        audit = users.audit_log(dash.layout.users_db, 10)
        assert ("login.success", "198.51.100.8") in [(a["action"], a["address"]) for a in audit]
        assert ("login.lockout", "198.51.100.7") in [(a["action"], a["address"]) for a in audit]
    finally:
        next(served, None)


def test_the_sign_in_page_shows_no_text_from_its_link(port):
    """A link cannot put its own wording in the page's red box (phishing)."""
    page = request(port, "GET", "/login?" + urlencode({"error": "Account suspended: call us"}))
    assert page.status == 200 and "Account suspended" not in page.text
    answer, _ = sign_in(port, "vic", "a wrong guess")
    assert "Wrong user name or password." in answer.text  # the form's own answers still show


def test_a_one_time_password_does_not_open_the_reports(port, dash):
    """Until its user sets their own password, a session opens nothing of the fleet's data:
    not the pages (tests/test_sessions_browser.py), not the actions, not the PDF reports."""
    report = dash.layout.reports_dir / "fleet-health-test.pdf"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_bytes(b"%PDF-1.4 test\n")
    users.add_user(dash.layout.users_db, "newbie", "viewer", OTHER, by="test", must_change=True)
    _, cookies = sign_in(port, "newbie", OTHER)
    answer = request(port, "GET", "/reports/fleet-health-test.pdf", cookies)
    assert answer.status == 302 and "/login" in answer.location
    _, viewer = sign_in(port, "vic")
    assert request(port, "GET", "/reports/fleet-health-test.pdf", viewer).status == 200
