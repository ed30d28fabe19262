"""Sign-in for the dashboards: our own login page (Panel's default one loads its logo from a
CDN, PLATFORM_NOTES), passwords checked against the argon2 hashes of the user store with
failed attempts throttled per client address (`core.sessions`), and a server-side session
whose random token is all the signed cookie carries.

Every HTTP request and websocket of a page passes `get_user`, which looks the token up in the
store: a session ended by sign-out, a password or role change or a removal, or older than
`SESSION_HOURS`, opens nothing, whatever the browser kept. Roles are looked up per request too:
a demoted engineer cannot act on an alert from a page opened before the change."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

import jinja2
import tornado.web
from panel.auth import BasicAuthProvider
from tornado.web import decode_signed_value

from core import sessions
from core.sessions import SESSION_HOURS

REPORTS = "/reports/"  # the PDFs served from the data folder (dashboards.app static_dirs)
COOKIE = "rul_session"  # not Panel's `user`: the value is a session token, not a user name
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True)
# a plain query string: `id=DC-BKK-01&battery=...`; anything else is dropped with the target
_PLAIN_QUERY = re.compile(r"[A-Za-z0-9_.~=&:+-]*")


def session_token(cookie_value: str | bytes | None, secret: str) -> str | None:
    """The session token a signed cookie carries, if the signature holds and it is younger than
    a session; None otherwise. Whether the session is still alive is the store's to say."""
    if not cookie_value:
        return None
    decoded = decode_signed_value(secret, COOKIE, cookie_value, max_age_days=SESSION_HOURS / 24)
    return decoded.decode("utf-8") if decoded else None


def _safe_next(url: str | None) -> str:
    """Where to go after sign-in: only one of the app's own pages (or `/`), with its query string
    when that is plain; anything else (another site, `/\\host`, an unknown path) goes to the
    fleet page."""
    from dashboards.app import page_keys  # app imports this module

    path, _, query = (url or "").partition("?")
    if path in {"/", *(f"/{key}" for key in page_keys())}:
        return f"{path}?{query}" if query and _PLAIN_QUERY.fullmatch(query) else path
    return "/fleet"


class LoginHandler(tornado.web.RequestHandler):
    users_db: Path  # set by FleetAuth

    def get(self) -> None:
        # no message from the query string: a link could otherwise put any wording in the
        # page's red box (phishing); only the answers of `post` are shown
        self._page("", "", self.get_argument("username", ""))

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
        address = self.request.remote_ip or "unknown"
        result = sessions.authenticate(self.users_db, username,
                                       self.get_argument("password", ""), address)
        if not result.ok:
            # the page itself answers 200 with the reason, as sign-in forms do (a 401 would
            # be a console error in every browser); the lock is enforced all the same
            if result.status == sessions.LOCKED:
                message = (f"Too many failed sign-ins: try again in "
                           f"{max(1, round(result.retry_after_s / 60))} min.")
            else:
                message = "Wrong user name or password."
            self._page(message, "error", username)
            return
        previous = session_token(self.get_cookie(COOKIE), self.settings["cookie_secret"])
        if previous:  # a new sign-in in this browser replaces its old session
            sessions.end(self.users_db, previous)
        token = sessions.start(self.users_db, result.username, address)
        # Secure once the browser speaks HTTPS (behind a TLS proxy with --trusted-proxy,
        # Tornado reads the scheme from X-Forwarded-Proto): the cookie then never goes out
        # over plain HTTP
        self.set_secure_cookie(COOKIE, token, expires_days=SESSION_HOURS / 24, httponly=True,
                               samesite="Strict", path="/",
                               secure=self.request.protocol == "https")
        self.redirect(_safe_next(self.get_argument("next", None)))


class LogoutHandler(tornado.web.RequestHandler):
    users_db: Path  # set by FleetAuth

    def get(self) -> None:
        token = session_token(self.get_cookie(COOKIE), self.settings["cookie_secret"])
        if token:
            sessions.end(self.users_db, token)
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
            token = session_token(handler.get_cookie(COOKIE), self.secret)
            account = sessions.resolve(self.users_db, token)
            if account is None:
                return None
            if account.must_change and handler.request.path.startswith(REPORTS):
                return None  # a one-time password opens its own change, not the fleet's data
            return account.username
        return get_user

    @property
    def login_handler(self):
        return type("FleetLoginHandler", (LoginHandler,), {"users_db": self.users_db})

    @property
    def logout_handler(self):
        return type("FleetLogoutHandler", (LogoutHandler,), {"users_db": self.users_db})
