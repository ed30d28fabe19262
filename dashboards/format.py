"""How values look on every page: local times (sites are in Asia/Bangkok; storage and exports
stay UTC), days, badges, and HTML panes that carry the app's stylesheet (Panel renders each
component in its own shadow root, where a page-wide stylesheet does not reach)."""

from __future__ import annotations

import datetime as dt
import html as html_lib
import math
from zoneinfo import ZoneInfo

import pandas as pd
import panel as pn
import polars as pl
from bokeh.models import NumberFormatter

from reporting.fleet import LOCAL_TZ

CSS = "/assets/app.css"
LOCAL = ZoneInfo(LOCAL_TZ)
BADGE = {"healthy": "ok", "warning": "warn", "critical": "crit", "unknown": "unk",
         "open": "crit", "acknowledged": "warn", "resolved": "ok"}


def html(text: str, **kwargs) -> pn.pane.HTML:
    return pn.pane.HTML(text, stylesheets=[CSS], **kwargs)


def deferred(build, **kwargs) -> pn.viewable.Viewable:
    """A part built after the page has shown (charts): the numbers a user came for appear
    first, the drawings a moment later."""
    return pn.panel(build, defer_load=True, loading_indicator=True, **kwargs)


def esc(value: object) -> str:
    return html_lib.escape("" if value is None else str(value))


def notify(kind: str, text: str, duration: int = 6000) -> None:
    """A toast ("success", "error", ...) showing `text` as plain text. Panel's toasts (Notyf)
    insert their message as HTML, and messages carry user text (names, errors quoting input),
    so it is escaped here, for every page."""
    if pn.state.notifications is not None:
        getattr(pn.state.notifications, kind)(esc(text), duration=duration)


def local(ts: dt.datetime | None, with_zone: bool = True) -> str:
    """A UTC time as the sites read it (ICT = Asia/Bangkok, UTC+7)."""
    if ts is None:
        return "—"
    ts = ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)
    return ts.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M") + (" ICT" if with_zone else "")


def days(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:,.0f} d"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def number(value: float | None, decimals: int = 1, unit: str = "") -> str:
    """A measured figure at the precision it deserves, with its unit ("31.2 °C", "4.25 mΩ");
    "—" when not measured, never a zero."""
    if _missing(value):
        return "—"
    return f"{value:,.{decimals}f}" + (f" {unit}" if unit else "")


def percent(share: float | None, decimals: int = 1) -> str:
    """A share (0.041667) as people read it: "4.2 %"."""
    return "—" if _missing(share) else f"{share * 100:,.{decimals}f} %"


def number_format(decimals: int = 0) -> NumberFormatter:
    """A table column's numbers: thousands separated, `decimals` places, a gap as "—" (not
    NaN; a whole-number column with a gap arrives as floats)."""
    places = f".{'0' * decimals}" if decimals else ""
    return NumberFormatter(format=f"0,0{places}", nan_format="—", null_format="—",
                           text_align="right")


def yes_no(value: bool | None) -> str:
    """A flag in words instead of `true`/`false`."""
    return "—" if value is None else "Yes" if value else "No"


def badge(status: str | None) -> str:
    status = status or "unknown"
    return f'<span class="badge {BADGE.get(status, "unk")}">{esc(status)}</span>'


def link(href: str, text: str) -> str:
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def local_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """Every UTC datetime column shown in local time (naive, so widgets do not shift it)."""
    return frame.with_columns(
        pl.col(c).dt.convert_time_zone(LOCAL_TZ).dt.replace_time_zone(None)
        for c, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone)


def to_pandas(frame: pl.DataFrame) -> pd.DataFrame:
    """For widgets that take pandas (Tabulator), in local time."""
    return local_columns(frame).to_pandas()


def stat_card(title: str, value: str, note: str = "", kind: str = "", name: str = "") -> str:
    ident = f' id="stat-{esc(name)}"' if name else ""
    return (f'<div class="card stat {kind}"{ident}><div class="stat-title">{esc(title)}</div>'
            f'<div class="stat-value">{esc(value)}</div>'
            f'<div class="stat-note">{esc(note)}</div></div>')
