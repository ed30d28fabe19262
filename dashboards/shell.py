"""What every page shares: the header with navigation and the signed-in user, the live/stale
indicator, the SIMULATION banner while any scenario runs, and one periodic callback per
session that refreshes them and whatever the page registered (`on_tick`). Each tick reads
through the server-wide cache, so a page costs the warehouse nothing extra per session; it also
asks the user store whether the sign-in session is still alive, and once it has ended (signed
out elsewhere, password or role changed, user removed, 8 hours passed) the page is replaced by
a sign-in link and stops ticking, so an open tab shows and does nothing more."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import panel as pn

from core import sessions, users
from dashboards.actions import Actor
from dashboards.cache import CachedReader
from dashboards.format import esc, html, local

TICK_MS = 2000  # a new reading or alert shows within a tick of reaching the cache (TTL 2 s)
STALE_AFTER_S = 90  # the simulator lands and publishes every tick (5 s in the demo): 90 s of
# silence means it stopped or is stuck, not that a batch is being written
NAV = (("fleet", "Fleet"), ("alerts", "Alerts"), ("plan", "Replacement plan"),
       ("model", "Model"), ("simulator", "Simulator"))


ENDED = ('<p class="session-ended" id="session-ended">Your session has ended: '
         '<a href="/login">sign in again</a>.</p>')


@dataclass
class Session:
    """One browser session: who is signed in (a name bound to its server-side session, passed
    as is to `dashboards.actions`), the role and must-change flag at page load, the shared
    reader."""

    user: Actor
    role: str
    data: CachedReader
    users_db: Path
    must_change: bool = False
    ticks: list[Callable[[], None]] = field(default_factory=list)

    def can(self, action: str) -> bool:
        return users.allowed(self.role, action)

    def alive(self) -> bool:
        """Whether the store still holds this session for this user."""
        account = sessions.resolve(self.users_db, self.user.token)
        return account is not None and account.username == self.user

    def on_tick(self, fn: Callable[[], None]) -> None:
        self.ticks.append(fn)


def _indicator(newest: dict) -> str:
    ts, written = newest.get("ts"), newest.get("written_at")
    if ts is None:
        return '<span class="live none" id="live-indicator">NO DATA</span>'
    if written is None:
        return (f'<span class="live stale" id="live-indicator" title="no live readings yet">'
                f'HISTORY · data to {esc(local(ts))}</span>')
    age = (dt.datetime.now(dt.UTC) - written).total_seconds()
    kind, word = ("ok", "LIVE") if age <= STALE_AFTER_S else ("stale", "STALE")
    return (f'<span class="live {kind}" id="live-indicator" data-ts="{ts.isoformat()}">'
            f'{word} · newest reading {esc(local(ts))} (simulated) · received '
            f'{max(age, 0):.0f} s ago</span>')


def _banner(simulator: dict) -> str:
    scenarios = simulator.get("control", {}).get("scenarios", [])
    if not scenarios:
        return ""
    what = ", ".join(f"{esc(s['name'])} on {esc(s['target'])}" for s in scenarios)
    return (f'<div class="sim-banner" id="sim-banner" role="alert">SIMULATION · scenario '
            f'active: {what} · readings and alerts below are affected</div>')


def shell(session: Session, page: str, title: str, content: pn.viewable.Viewable) -> pn.Column:
    """The page: header, banner, title and content, kept fresh by one periodic callback."""
    links = "".join(
        f'<a class="{"active" if key == page else ""}" href="/{key}">{label}</a>'
        for key, label in NAV)
    if session.can(users.MANAGE_USERS):
        links += f'<a class="{"active" if page == "admin" else ""}" href="/admin">Users</a>'
    header = html(
        f'<header class="top"><a class="brand" href="/fleet">Thai Battery Fleet RUL</a>'
        f'<nav>{links}</nav><span class="who" id="who">{esc(session.user)} '
        f'<span class="role">{esc(session.role)}</span> · <a href="/logout">Sign out</a>'
        f'</span></header>', sizing_mode="stretch_width")
    live = html(_indicator(session.data("live", "newest")), sizing_mode="stretch_width")
    banner = html(_banner(session.data("live", "simulator")), sizing_mode="stretch_width")

    page = pn.Column(header, banner, live, html(f"<h1>{esc(title)}</h1>"), content,
                     sizing_mode="stretch_width", css_classes=["page"])

    def tick() -> None:
        if not session.alive():
            page.objects = [html(ENDED, sizing_mode="stretch_width")]
            callback.stop()
            return
        live.object = _indicator(session.data("live", "newest"))
        text = _banner(session.data("live", "simulator"))
        if banner.object != text:
            banner.object = text
        for fn in session.ticks:
            fn()

    callback = pn.state.add_periodic_callback(tick, period=TICK_MS)
    return page
