"""The simulator page's self-contained parts, kept apart from its assembly so the page stays
readable: the status cards redrawn every tick, and the target picker (site, then optionally a
string and a block) that the scenario and offset forms each use."""

from __future__ import annotations

import datetime as dt

import panel as pn
import polars as pl

from dashboards.format import esc, local, stat_card


def parse_time(value: str | None) -> dt.datetime | None:
    """An ISO time from the simulator's status or control file; empty means none."""
    return dt.datetime.fromisoformat(value) if value else None


def status_html(status: dict) -> str:
    running = bool(status.get("running"))
    if not status.get("updated_at"):
        return ('<div class="cards" id="sim-status"><p class="empty">The simulator has not run '
                'yet: start it below or with `rul simulate start`.</p></div>')

    def num(key: str, fmt: str) -> str:
        return "—" if status.get(key) is None else format(status[key], fmt)

    state = '<span class="badge ok">RUNNING</span>' if running else \
        '<span class="badge crit">STOPPED</span>'
    return ('<div class="cards" id="sim-status">'
            f'<div class="card stat sim-state"><div class="stat-title">Simulator</div>'
            f'<div class="stat-value">{state}</div><div class="stat-note">'
            f'{esc(status.get("state") or "—")} · updated '
            f'{esc(local(parse_time(status["updated_at"])))}'
            f'</div></div>'
            + stat_card("Simulated clock", local(parse_time(status.get("sim_time"))),
                        "newest simulated reading", name="sim-clock")
            + stat_card("Speed", f"{num('speed', 'g')}×", f"a tick every {num('tick_s', 'g')} s",
                        name="sim-speed")
            + stat_card("Ticks", num("ticks", ","), f"lag {num('lag_s', '.1f')} s",
                        name="sim-ticks")
            + stat_card("Readings written", num("readings_written", ","),
                        f"{num('batteries', ',')} batteries", name="sim-readings")
            + stat_card("CPU share", "—" if status.get("cpu_share") is None
                        else f"{status['cpu_share']:.1%}", "of one core", name="sim-cpu")
            + "</div>")


class Picker:
    """A target chosen as a site, then optionally one of its strings and one of its blocks."""

    def __init__(self, sites: list[str], strings: pl.DataFrame, batteries: pl.DataFrame,
                 css: str, disabled: bool) -> None:
        self.strings, self.batteries = strings, batteries
        self.site = pn.widgets.Select(name="Site", options=sites, width=170, disabled=disabled,
                                      css_classes=[css])
        self.string = pn.widgets.Select(name="String (optional)", width=230, disabled=disabled,
                                        css_classes=[f"{css}-string"])
        self.battery = pn.widgets.Select(name="Battery (optional)", width=250, disabled=disabled,
                                         css_classes=[f"{css}-battery"])
        self.locked, self.kinds = disabled, ("site", "string", "battery")
        self.site.param.watch(lambda _: self._fill_strings(), "value")
        self.string.param.watch(lambda _: self._fill_batteries(), "value")
        self._fill_strings()

    def _fill_strings(self) -> None:
        ids = self.strings.filter(pl.col("site_id") == self.site.value)["string_id"].to_list() \
            if not self.strings.is_empty() else []
        self.string.options = {"whole site": ""} | {s: s for s in ids}
        self.string.value = ""
        self._fill_batteries()

    def _fill_batteries(self) -> None:
        ids = self.batteries.filter(pl.col("string_id") == self.string.value)["battery_id"] \
            .to_list() if self.string.value and not self.batteries.is_empty() else []
        self.battery.options = {"whole string": ""} | {b: b for b in ids}
        self.battery.value = ""
        self.battery.disabled = self.locked or not ids or "battery" not in self.kinds

    def restrict(self, kinds: tuple[str, ...]) -> None:
        """Only the kinds of target the scenario accepts can be picked."""
        self.kinds = kinds
        self.string.disabled = self.locked or not ({"string", "battery"} & set(kinds))
        if self.string.disabled:
            self.string.value = ""
        self._fill_batteries()

    @property
    def target(self) -> str:
        return self.battery.value or self.string.value or self.site.value or ""

    def row(self) -> pn.Row:
        return pn.Row(self.site, self.string, self.battery)
