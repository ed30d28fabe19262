"""Simulator page, for the engineer running a drill: the live simulator's status every tick,
start and stop, scenarios applied to a site, string or battery and cleared, offsets, and the
control log and ended scenarios (who did what, when). Everything goes through
`dashboards.actions`, which checks the role on the server and records the user; viewers see the
same page read-only. Start and stop wait for the simulator, so they run off the event loop. The
status cards and the target picker live in `dashboards.simulator_parts`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import panel as pn
import polars as pl
from bokeh.models.widgets.tables import DateFormatter, NumberFormatter

from core import users
from dashboards import actions
from dashboards.exports import download_buttons
from dashboards.format import esc, html, notify, to_pandas
from dashboards.simulator_parts import Picker, parse_time, status_html
from simulator.live.scenarios import CATALOGUE, DEFAULT_OUTAGE_S, OFFSETS

WHEN = DateFormatter(format="%Y-%m-%d %H:%M:%S", nan_format="—")
FORMATS = {"started": DateFormatter(format="%Y-%m-%d %H:%M", nan_format="at the next tick"),
           "ends": DateFormatter(format="%Y-%m-%d %H:%M", nan_format="—")}
NUMBER = NumberFormatter(format="0.[00]", nan_format="—", text_align="right")
UTC = pl.Datetime("us", "UTC")
ACTIVE = {"id": pl.String, "name": pl.String, "target": pl.String, "params": pl.String,
          "duration_h": pl.Float64, "started": UTC, "ends": UTC,
          "applied_at": UTC, "applied_by": pl.String}
ENDED = {"id": pl.String, "name": pl.String, "target": pl.String, "params": pl.String,
         "applied_at": UTC, "applied_by": pl.String, "ended_at": UTC, "ended_how": pl.String,
         "ended_by": pl.String}
LOG = {"at": UTC, "by": pl.String, "action": pl.String, "detail": pl.String}
TITLES = {"id": "ID", "started": "started (simulated, ICT)", "ends": "ends (simulated, ICT)",
          "duration_h": "duration (simulated h)", "temperature_c": "temperature (°C)",
          "voltage_v": "voltage (V/block)", "discharge_rate": "discharge rate (×)"}
CLEAR = '<span style="color:#c62828;font-weight:bold;cursor:pointer">✕ Clear</span>'
OFFSET_LABELS = {"temperature_c": "Temperature offset (°C)", "voltage_v": "Voltage (V per block)",
                 "discharge_rate": "Discharge rate (× load)"}


def _frame(rows: list[dict], schema: dict) -> pl.DataFrame:
    """Control-file entries as a table (ISO times parsed as UTC), newest first."""
    out = [{k: parse_time(r.get(k)) if t == UTC else r.get(k) for k, t in schema.items()} for r in rows]
    return pl.DataFrame(out[::-1], schema=schema)


def _params(params: dict) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in (params or {}).items())


def _sim_times(s: dict) -> dict:
    """When a scenario started and ends in simulated time (the simulator stamps `start_s`,
    simulated epoch seconds, at its first tick; a power outage without a duration lasts
    DEFAULT_OUTAGE_S)."""
    if s.get("start_s") is None:
        return {"started": None, "ends": None}
    start = dt.datetime.fromtimestamp(s["start_s"], dt.UTC)
    length = s.get("duration_s") or (DEFAULT_OUTAGE_S if s["name"] == "power_outage" else None)
    return {"started": start.isoformat(),
            "ends": (start + dt.timedelta(seconds=length)).isoformat() if length else None}


def active_frame(control: dict) -> pl.DataFrame:
    rows = [s | _sim_times(s) | {"params": _params(s.get("params")), "duration_h":
                                 s["duration_s"] / 3600 if s.get("duration_s") else None}
            for s in control.get("scenarios", [])]
    return _frame(rows, ACTIVE)


def ended_frame(control: dict) -> pl.DataFrame:
    return _frame([s | {"params": _params(s.get("params"))} for s in control.get("ended", [])],
                  ENDED)


def offsets_frame(control: dict) -> pl.DataFrame:
    rows = [{"target": t} | {k: v.get(k) for k in OFFSETS}
            for t, v in control.get("offsets", {}).items()]
    return pl.DataFrame(rows, schema={"target": pl.String} | {k: pl.Float64 for k in OFFSETS})


def _table(frame: pl.DataFrame, css: str, **kwargs) -> pn.widgets.Tabulator:
    times = [c for c, t in frame.schema.items() if t == UTC]
    return pn.widgets.Tabulator(
        to_pandas(frame), pagination="local", page_size=50, disabled=True, show_index=False,
        sizing_mode="stretch_width", css_classes=[css],
        titles={c: TITLES.get(c) or c.replace("_", " ") + (" (ICT)" if c in times else "")
                for c in frame.columns},
        formatters={c: FORMATS.get(c, WHEN) for c in times}
        | {c: NUMBER for c, t in frame.schema.items() if t == pl.Float64}, **kwargs)


def build(session, app) -> tuple[str, pn.viewable.Viewable]:
    data = session.data
    can = session.can(users.CONTROL_SIMULATOR)
    sim = data("live", "simulator")
    seen = {"status": None, "control": None}
    sites = data("slow", "table", "sites")
    site_ids = sites["site_id"].to_list() if not sites.is_empty() else []
    strings, batteries = data("slow", "table", "strings"), data("slow", "batteries")
    message = html("", sizing_mode="stretch_width", css_classes=["sim-message"])
    status = html(status_html(sim["status"]), sizing_mode="stretch_width")

    tick_s = pn.widgets.FloatInput(name="Tick (wall s)", value=5.0, start=0.5, end=60, step=0.5,
                                   width=120, disabled=not can, css_classes=["sim-tick"])
    speed = pn.widgets.FloatInput(name="Speed (× real time)", value=60.0, start=1, end=1e5,
                                  width=140, disabled=not can, css_classes=["sim-speed-input"])
    start = pn.widgets.Button(name="Start", button_type="success", align="end",
                              css_classes=["start-simulator"])
    stop = pn.widgets.Button(name="Stop", button_type="danger", align="end",
                             css_classes=["stop-simulator"])

    scenario = pn.widgets.Select(name="Scenario", options=list(CATALOGUE), value="hvac_failure",
                                 width=220, disabled=not can, css_classes=["scenario-select"])
    about = html("", sizing_mode="stretch_width")
    picker = Picker(site_ids, strings, batteries, "target-select", not can)
    duration = pn.widgets.FloatInput(name="Duration (simulated h; empty: until cleared)",
                                     value=None, start=0.01, width=290, disabled=not can,
                                     css_classes=["scenario-duration"])
    params, inputs = pn.Column(), {}  # the chosen scenario's parameters: name -> input
    apply = pn.widgets.Button(name="Apply scenario", button_type="primary", disabled=not can,
                              css_classes=["apply-scenario"])
    clear_all = pn.widgets.Button(name="Clear all scenarios", button_type="warning",
                                  disabled=not can, css_classes=["clear-scenarios"])

    offset_picker = Picker(site_ids, strings, batteries, "offset-target", not can)
    offsets = {k: pn.widgets.FloatInput(name=f"{OFFSET_LABELS[k]} {lo:g}…{hi:g}", value=neutral,
                                        start=lo, end=hi, step=0.1, width=210, disabled=not can,
                                        css_classes=[f"offset-{k}"])
               for k, (lo, hi, neutral) in OFFSETS.items()}
    set_offsets = pn.widgets.Button(name="Set offsets", button_type="primary", disabled=not can,
                                    css_classes=["apply-offsets"])
    reset_offsets = pn.widgets.Button(name="Reset target", button_type="light", disabled=not can,
                                      css_classes=["reset-offsets"])

    control = sim["control"]
    frames = {"active": active_frame(control), "offsets": offsets_frame(control),
              "ended": ended_frame(control), "log": _frame(control.get("log", []), LOG)}
    active = _table(frames["active"], "active-scenarios",
                    **({"buttons": {"clear": CLEAR}} if can else {}))
    offset_table = _table(frames["offsets"], "offsets-table")
    ended = _table(frames["ended"], "ended-scenarios")
    log = _table(frames["log"], "control-log")
    tables = {"active": active, "offsets": offset_table, "ended": ended, "log": log}

    def show_scenario(*_) -> None:
        spec = CATALOGUE[scenario.value]
        about.object = (f'<p class="note" id="scenario-about">{esc(spec.summary)} · applies to a '
                        f'{" / ".join(spec.targets)}</p>')
        picker.restrict(spec.targets)
        inputs.clear()
        inputs.update({k: pn.widgets.FloatInput(name=f"{k} ({lo:g}…{hi:g})", value=default,
                                                start=lo, end=hi, width=200, disabled=not can,
                                                css_classes=[f"param-{k}"])
                       for k, (default, lo, hi) in spec.params.items()})
        params.objects = list(inputs.values())

    def show_offsets(*_) -> None:
        current = seen["control"]["offsets"].get(offset_picker.target, {}) if seen["control"] \
            else {}
        for k, widget in offsets.items():
            widget.value = current.get(k, OFFSETS[k][2])

    def refresh() -> None:
        sim = data("live", "simulator")
        running = bool(sim["status"].get("running"))
        start.disabled, stop.disabled = not can or running, not can or not running
        text = status_html(sim["status"])
        if text != seen["status"]:
            seen["status"] = status.object = text
        if sim["control"] != seen["control"]:
            control = seen["control"] = json.loads(json.dumps(sim["control"]))
            frames.update(active=active_frame(control), offsets=offsets_frame(control),
                          ended=ended_frame(control), log=_frame(control.get("log", []), LOG))
            for key, table in tables.items():
                table.value = to_pandas(frames[key])

    async def run(button: pn.widgets.Button, call, done: str) -> None:
        button.loading = True
        try:
            await asyncio.to_thread(call)
        except (users.UserStoreError, actions.ActionError, RuntimeError) as exc:
            message.object = f'<p class="sim-msg err" id="sim-error">{esc(exc)}</p>'
            notify("error", str(exc), 8000)
            return
        finally:
            button.loading = False
        data.cache.clear()
        message.object = f'<p class="sim-msg ok" id="sim-ok">{esc(done)}</p>'
        notify("success", done, 5000)
        refresh()
        show_offsets()

    args = (app.settings, app.users_db, session.user)

    async def on_start(_) -> None:
        await run(start, lambda: actions.start_simulator(*args, float(tick_s.value or 5),
                                                          float(speed.value or 60)),
                  f"Simulator started by {session.user}.")

    async def on_stop(_) -> None:
        await run(stop, lambda: actions.stop_simulator(*args),
                  f"Simulator stopped by {session.user}.")

    async def on_apply(_) -> None:
        name, target = scenario.value, picker.target
        values = {k: float(w.value) for k, w in inputs.items() if w.value is not None}
        hours = duration.value if duration.value and duration.value > 0 else None
        await run(apply, lambda: actions.apply_scenario(
            *args, name, target, hours * 3600 if hours else None, values),
            f"{name} applied to {target} by {session.user}"
            + (f" for {hours:g} simulated h." if hours else " until cleared."))

    async def on_clear(event) -> None:
        if event.column != "clear" or event.row >= frames["active"].height:
            return
        scenario_id = frames["active"]["id"][event.row]
        await run(clear_all, lambda: actions.clear_scenarios(*args, scenario_id),
                  f"Scenario {scenario_id} cleared by {session.user}.")

    async def on_clear_all(_) -> None:
        await run(clear_all, lambda: actions.clear_scenarios(*args),
                  f"All scenarios cleared by {session.user}.")

    async def on_offsets(_) -> None:
        target = offset_picker.target
        values = {k: float(w.value) for k, w in offsets.items()
                  if w.value is not None and w.value != OFFSETS[k][2]}
        await run(set_offsets, lambda: actions.adjust(*args, target, values, True),
                  f"Offsets of {target} set to {_params(values) or 'neutral'} by {session.user}.")

    async def on_reset(_) -> None:
        target = offset_picker.target
        await run(reset_offsets, lambda: actions.adjust(*args, target, {}, True),
                  f"Offsets of {target} reset by {session.user}.")

    for button, handler in ((start, on_start), (stop, on_stop), (apply, on_apply),
                            (clear_all, on_clear_all), (set_offsets, on_offsets),
                            (reset_offsets, on_reset)):
        button.on_click(handler)
    active.on_click(on_clear, column="clear")
    scenario.param.watch(show_scenario, "value")
    for widget in (offset_picker.site, offset_picker.string, offset_picker.battery):
        widget.param.watch(show_offsets, "value")
    show_scenario()
    refresh()
    show_offsets()
    session.on_tick(refresh)

    def titled(title: str, name: str, key: str) -> pn.Row:
        return pn.Row(html(f"<h2>{title}</h2>"),
                      download_buttons(session, name, lambda: frames[key]))

    note = "" if can else (f'<p class="warn-box" id="read-only-note">Read-only: your role '
                           f'({esc(session.role)}) cannot control the simulator, and the server '
                           f'refuses it too. Ask an engineer.</p>')
    return "Live simulator", pn.Column(
        html(note, sizing_mode="stretch_width"), status, message,
        html("<h2>Start and stop</h2>"), pn.Row(tick_s, speed, start, stop),
        html("<h2>Apply a scenario</h2>"), pn.Row(scenario, duration), about, picker.row(),
        params, pn.Row(apply),
        titled("Active scenarios", "active-scenarios", "active"),
        html(f'<p class="note">Durations and the start and end are simulated time; without a '
             f'duration a scenario runs until cleared (a power outage '
             f'{DEFAULT_OUTAGE_S / 60:g} min).</p>', sizing_mode="stretch_width"),
        active, clear_all,
        html("<h2>Offsets</h2><p class=\"note\">They stay until reset. The form shows the "
             "chosen target's current offsets; setting them replaces those of the target.</p>",
             sizing_mode="stretch_width"),
        offset_picker.row(), pn.Row(*offsets.values()), pn.Row(set_offsets, reset_offsets),
        titled("Current offsets", "offsets", "offsets"), offset_table,
        titled("Control log (newest first)", "control-log", "log"), log,
        titled("Ended scenarios", "ended-scenarios", "ended"), ended,
        sizing_mode="stretch_width")
