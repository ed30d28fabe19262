"""Sign-in for the dashboards: our own login page (Panel's default one loads its logo from a
CDN, PLATFORM_NOTES), passwords checked against the argon2 hashes of the user store
(`core.users`), failed attempts throttled there, and a signed session cookie that the server
stops accepting after `SESSION_HOURS`, whatever the browser keeps.

Every HTTP request and websocket of a page passes `get_user`, so a user removed from the store
loses access at the next request. Roles are looked up per request too: a demoted engineer
cannot act on an alert from a page opened before the change."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import jinja2
import tornado.web
from panel.auth import BasicAuthProvider
from tornado.web import decode_signed_value

from core import users

SESSION_HOURS = 8  # one shift: a session left open on a control-room screen ends with it
COOKIE = "user"  # the name Panel reads `pn.state.user` from
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True)


def session_user(cookie_value: str | bytes | None, secret: str) -> str | None:
    """The user a signed cookie names, if the signature holds and it is younger than a
    session; None otherwise."""
    if not cookie_value:
        return None
    decoded = decode_signed_value(secret, COOKIE, cookie_value, max_age_days=SESSION_HOURS / 24)
    return decoded.decode("utf-8") if decoded else None


def _safe_next(url: str | None) -> str:
    """Only local paths: a login link cannot send the user to another site."""
    return url if url and url.startswith("/") and not url.startswith("//") else "/fleet"


class LoginHandler(tornado.web.RequestHandler):
    users_db: Path  # set by FleetAuth

    def get(self) -> None:
        self._page(self.get_argument("error", ""), "error" if self.get_argument("error", "")
                   else "", self.get_argument("username", ""))

    def _page(self, message: str, kind: str, username: str = "") -> None:
        self.set_header("Cache-Control", "no-store")
        self.write(TEMPLATES.get_template("login.html").render(
            login_endpoint="/login?" + urlencode({"next": _safe_next(self.get_argument(
                "next", None))}),
            message=message, kind=kind, username=username, xsrf=self.xsrf_token.decode(),
            session_hours=SESSION_HOURS))

    def post(self) -> None:
        self.check_xsrf_cookie()
        username = self.get_argument("username", "").strip()
        result = users.authenticate(self.users_db, username, self.get_argument("password", ""))
        if not result.ok:
            # the page itself answers 200 with the reason, as sign-in forms do (a 401 would
            # be a console error in every browser); the lock is enforced all the same
            if result.status == users.LOCKED:
                message = (f"Too many failed sign-ins for this account: try again in "
                           f"{max(1, round(result.retry_after_s / 60))} min.")
            else:
                message = "Wrong user name or password."
            self._page(message, "error", username)
            return
        self.set_secure_cookie(COOKIE, username, expires_days=SESSION_HOURS / 24, httponly=True,
                               samesite="Strict", path="/")
        self.redirect(_safe_next(self.get_argument("next", None)))


class LogoutHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.clear_cookie(COOKIE, path="/")
        self.clear_cookie("is_guest", path="/")
        self.redirect("/login")


class FleetAuth(BasicAuthProvider):
    """Panel auth provider over the user store (see the module docstring)."""

    def __init__(self, users_db: Path, cookie_secret: str) -> None:
        self.users_db, self.secret = users_db, cookie_secret  # the base class validates at init
        super().__init__(login_endpoint="/login", logout_endpoint="/logout")

    @property
    def get_user(self):
        def get_user(handler: tornado.web.RequestHandler) -> str | None:
            name = session_user(handler.get_cookie(COOKIE), self.secret)
            return name if name and users.get_role(self.users_db, name) else None
        return get_user

    @property
    def login_handler(self):
        return type("FleetLoginHandler", (LoginHandler,), {"users_db": self.users_db})

    @property
    def logout_handler(self):
        return LogoutHandler
