"""The dashboard server: one Panel server with a page per path, our own sign-in, static files
(stylesheet, icons, the map outline) served by the server itself so nothing is fetched from
outside, and one `FleetReader` cache shared by every session.

`rul dashboard` and `rul demo` call `serve`; tests call `build_server` to run it on a free
port in a thread."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import panel as pn
import tornado.web

from core import sessions
from core.layout import Layout
from core.settings import Settings
from dashboards.actions import Actor
from dashboards.auth import COOKIE, FleetAuth, session_token
from dashboards.cache import CachedReader
from dashboards.security import harden, public_patterns
from dashboards.shell import Session, shell
from reporting.fleet import FleetReader

STATIC = Path(__file__).parent / "static"
WORKER_THREADS = 4  # Polars and DuckDB release the GIL; more threads would only queue for it


@dataclass
class App:
    """Server-wide state: settings, the shared cached reader, the user store, the secret."""

    settings: Settings
    data: CachedReader
    users_db: Path
    secret: str

    @classmethod
    def create(cls, settings: Settings) -> App:
        layout = Layout(settings.data_dir)
        secret = sessions.ensure_cookie_secret(layout.cookie_secret_path)
        return cls(settings, CachedReader(FleetReader(settings)), layout.users_db, secret)

    def session(self) -> Session | None:
        """The signed-in user of the current Panel session: the cookie's token resolved by the
        store, so an ended or expired session, or a removed user, has none."""
        token = session_token(pn.state.cookies.get(COOKIE), self.secret)
        account = sessions.resolve(self.users_db, token) if token else None
        if token is None or account is None:
            return None
        return Session(Actor(account.username, token), account.role, self.data, self.users_db,
                       must_change=account.must_change)


def _pages() -> dict:
    from dashboards.pages import admin, alerts, battery, fleet, model, plan, simulator, site

    return {"fleet": fleet, "site": site, "battery": battery, "alerts": alerts, "plan": plan,
            "model": model, "simulator": simulator, "admin": admin}


def page_keys() -> tuple[str, ...]:
    """The app's page paths without the slash (where a sign-in may send the browser next)."""
    return tuple(_pages())


def applications(app: App) -> dict:
    """One Panel app per path; each builds its page for the signed-in session."""
    def make(key: str, module):
        def page():
            session = app.session()
            if session is None:  # the auth provider lets nobody in without a session
                return pn.pane.Markdown("Your session has ended: [sign in](/login) again.")
            if session.must_change:  # a one-time password opens nothing but its own change
                from dashboards.pages.admin import must_change

                title, content = must_change(session, app)
            else:
                title, content = module.build(session, app)
            return shell(session, key, title, content)
        return page
    return {key: make(key, module) for key, module in _pages().items()}


class Home(tornado.web.RequestHandler):
    def get(self) -> None:
        self.redirect("/fleet")


def server_kwargs(app: App, port: int, address: str, trusted_proxy: str | None = None) -> dict:
    """What `pn.serve` needs besides the pages: auth, static files, the `/` redirect, and the
    sign-in page's own assets without a session (`dashboards.security.public_patterns`).

    `trusted_proxy` (the public host[:port] of a TLS proxy in front) makes the server take the
    client's address and scheme from the proxy's X-Real-IP / X-Forwarded-For and
    X-Forwarded-Proto, so sign-in throttling counts each client, not the proxy, and accepts the
    page's websocket from that host. Only for a server that nobody but the proxy can reach:
    anyone else could claim any address in those headers."""
    # callbacks (deferred charts, ticks) on worker threads: a page drawing its charts does
    # not hold up another user's request on the server's event loop
    pn.extension("tabulator", notifications=True, inline=False, nthreads=WORKER_THREADS)
    pn.config.css_files = ["/assets/app.css"]
    reports = Layout(app.settings.data_dir).reports_dir
    reports.mkdir(parents=True, exist_ok=True)  # Panel refuses a static folder that is missing
    return {"auth_provider": FleetAuth(app.users_db, app.secret), "cookie_secret": app.secret,
            "static_dirs": {"assets": str(STATIC), "reports": str(reports)},
            "extra_patterns": [(r"/", Home), *public_patterns(STATIC)],
            "title": {k: f"{k.title()} · Thai Battery Fleet RUL" for k in _pages()},
            "websocket_origin": [f"{address}:{port}", f"localhost:{port}",
                                 *([trusted_proxy] if trusted_proxy else [])],
            "use_xheaders": bool(trusted_proxy), "admin": False, "show": False}


def build_server(settings: Settings, port: int, address: str = "127.0.0.1",
                 trusted_proxy: str | None = None):
    """A started-but-not-running server (tests run its IO loop in a thread)."""
    app = App.create(settings)
    server = pn.serve(applications(app), port=port, address=address, start=False,
                      threaded=False, **server_kwargs(app, port, address, trusted_proxy))
    harden(server._tornado)  # security headers on every response (Bokeh exposes no setting)
    return server


def serve(settings: Settings, port: int, address: str = "127.0.0.1",
          trusted_proxy: str | None = None) -> None:
    """Serve until interrupted (Panel's SIGINT handler stops the loop)."""
    server = build_server(settings, port, address, trusted_proxy)
    server.start()
    server.io_loop.start()
