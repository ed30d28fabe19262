"""Battery page: the block's papers (model, serial, install, warranty, age), its readings now,
its voltage, temperature, resistance and charge over a chosen range with outages marked, the
RUL forecast with its interval and drivers (and how it evolved), its alerts and maintenance.
New readings are streamed onto the charts, not redrawn."""

from __future__ import annotations

import datetime as dt

import hvplot.pandas  # noqa: F401  (registers .hvplot)
import panel as pn
import polars as pl
from bokeh.models import BoxAnnotation, ColumnDataSource, DatetimeTickFormatter
from bokeh.plotting import figure

from dashboards.drivers import in_words
from dashboards.exports import download_buttons
from dashboards.format import (
    badge,
    days,
    esc,
    html,
    link,
    local,
    local_columns,
    number_format,
    to_pandas,
)
from dashboards.pages.fleet import alerts_table

RANGES = {"24 h": (dt.timedelta(hours=24), None), "7 d": (dt.timedelta(days=7), None),
          "30 d": (dt.timedelta(days=30), "1h"), "all": (None, "1d")}
CHARTS = (("voltage_v", "Voltage (V)", "#1d4e7a"), ("temperature_c", "Temperature (°C)", "#c0392b"),
          ("resistance_mohm", "Resistance (mΩ)", "#6c3483"), ("soc_pct", "State of charge (%)",
                                                             "#1f8f55"))

# maintenance record column: title in words with its unit (simulator.schema.MAINTENANCE_EVENTS)
MAINTENANCE = {"ts": "when (ICT)", "event_type": "what was done",
               "resistance_mohm": "resistance (mΩ)",
               "measured_capacity_ah": "measured capacity (Ah)",
               "test_rate_hours": "test rate (hours)", "new_battery_id": "replaced by",
               "reason": "reason"}
EVENTS = {"ohmic_reading": "ohmic reading", "capacity_test": "capacity test",
          "replacement": "replacement"}


def maintenance_frame(maintenance: pl.DataFrame) -> pl.DataFrame:
    """The maintenance records as a site engineer reads them: local time to the minute, what
    was done in words, resistance to a hundredth of a mΩ (a block reads a few mΩ, so a tenth
    would hide a change of a few %), capacity to a tenth of an Ah (a test's error is a few
    percent), the test rate in whole hours."""
    return local_columns(maintenance.select(*MAINTENANCE)).with_columns(
        pl.col("ts").dt.strftime("%Y-%m-%d %H:%M"),
        pl.col("event_type").replace(EVENTS),
        pl.col("resistance_mohm").round(2), pl.col("measured_capacity_ah").round(1),
        pl.col("test_rate_hours").round(0).cast(pl.Int64))


def _specs(b: dict, now: dt.datetime | None) -> str:
    age = "—" if now is None else f"{(now.date() - b['install_date']).days / 365.25:.1f} years"
    warranty = b["warranty_end"]
    expired = now is not None and warranty is not None and warranty < now.date()
    return (f'<div class="card" id="specs"><h2>Specifications</h2><dl class="kv">'
            f'<dt>Model</dt><dd>{esc(b["battery_model"])} ({b["rated_capacity_ah"]:.0f} Ah)</dd>'
            f'<dt>Serial</dt><dd>{esc(b["serial"])}</dd>'
            f'<dt>Site / string / position</dt><dd>{link("/site?id=" + b["site_id"], b["site_id"])}'
            f' / {esc(b["string_id"])} / {b["position"]}</dd>'
            f'<dt>Installed</dt><dd>{b["install_date"]}</dd><dt>Age</dt><dd>{age}</dd>'
            f'<dt>Warranty end</dt><dd>{warranty}{" (expired)" if expired else ""}</dd></dl></div>')


def _readings(r: dict | None) -> str:
    if not r or r.get("reading_ts") is None:
        return '<div class="card" id="readings"><h2>Now</h2><p class="empty">No readings yet.</p></div>'
    vs = r.get("resistance_vs_baseline_pct")
    vs = "" if vs is None else f" ({vs:+.1f} % vs its baseline, both at 25 °C)"
    return (f'<div class="card" id="readings"><h2>Now</h2><dl class="kv">'
            f'<dt>Voltage</dt><dd id="now-voltage">{r["voltage_v"]:.3f} V</dd>'
            f'<dt>Current</dt><dd>{r["current_a"]:.2f} A ({esc(r["mode"])})</dd>'
            f'<dt>Temperature</dt><dd>{r["temperature_c"]:.2f} °C</dd>'
            f'<dt>Resistance</dt><dd>{r["resistance_mohm"]:.3f} mΩ{vs}</dd>'
            f'<dt>State of charge</dt><dd>{r["soc_pct"]:.1f} %</dd>'
            f'<dt>Status</dt><dd>{badge(r["status"])}</dd>'
            f'<dt>Reading time</dt><dd id="now-ts">{esc(local(r["reading_ts"]))}</dd></dl></div>')


def _rul(r: dict | None) -> str:
    state = (r or {}).get("rul_status")
    if state is None:
        body = '<p class="empty" id="rul-none">No prediction yet: this battery has not been scored.</p>'
    elif state != "ok":
        reason = {"insufficient_data": "Insufficient data: under 14 days of history, or too many "
                  "missing or stuck readings for a forecast.",
                  "stale_data": "Stale data: no reading for a week, so no forecast."}.get(
            state, state)
        body = f'<p class="empty" id="rul-none">{esc(reason)}</p>'
    else:
        drivers = [in_words(r.get(f"driver_{i}")) for i in (1, 2, 3)]
        items = "".join(f"<li>{esc(d)}</li>" for d in drivers if d)
        body = (f'<dl class="kv"><dt>Expected (P50)</dt><dd id="rul-p50"><b>{days(r["rul_p50_days"])}'
                f'</b></dd><dt>80 % interval</dt><dd>{days(r["rul_p10_days"])} – '
                f'{days(r["rul_p90_days"])} (P10–P90)</dd><dt>Risk</dt><dd>'
                f'{badge(r["risk_level"])}</dd><dt>Scored</dt><dd>{esc(local(r["as_of"]))} '
                f'(model v{r["model_version"]})</dd></dl><p><b>What drives it</b></p><ul>{items}</ul>')
    return f'<div class="card" id="rul-card"><h2>Remaining useful life</h2>{body}</div>'


def _figure(column: str, title: str, colour: str, source: ColumnDataSource, x_range=None):
    shared = {"x_range": x_range} if x_range is not None else {}
    fig = figure(height=190, sizing_mode="stretch_width", x_axis_type="datetime", title=title,
                 tools="pan,xwheel_zoom,box_zoom,reset,save", toolbar_location="right", **shared)
    fig.line("ts", column, source=source, color=colour, line_width=1.5)
    fig.xaxis.formatter = DatetimeTickFormatter(hours="%H:%M", days="%d %b", months="%b %Y")
    fig.xaxis.axis_label = "time (Asia/Bangkok)"
    return fig


def _outages(figures, events: pl.DataFrame) -> None:
    for fig in figures:
        fig.center = [r for r in fig.center if not isinstance(r, BoxAnnotation)]
        for e in local_columns(events).iter_rows(named=True):
            fig.add_layout(BoxAnnotation(left=e["start_ts"], right=e["end_ts"],
                                         fill_color="#f5a623", fill_alpha=0.25))


def build(session, app) -> tuple[str, pn.viewable.Viewable]:
    data = session.data
    battery_id = (pn.state.session_args.get("id") or [b""])[0].decode()
    known = data("slow", "batteries")
    match = known.filter(pl.col("battery_id") == battery_id) if not known.is_empty() else known
    if match.is_empty():
        return "Battery not found", html(f'<p class="empty">No battery in service with id '
                                         f'{esc(battery_id)}.</p>')
    b = match.row(0, named=True)
    now = data("live", "newest")["ts"]

    def status_row() -> dict | None:
        rows = data("status", "battery_status", b["site_id"]).filter(
            pl.col("battery_id") == battery_id)
        return rows.row(0, named=True) if rows.height else None

    readings = html(_readings(status_row()), sizing_mode="stretch_width")
    rul = html(_rul(status_row()), sizing_mode="stretch_width")
    source = ColumnDataSource(data={"ts": [], **{c: [] for c, _, _ in CHARTS}})
    figures = [_figure(*CHARTS[0], source)]
    figures += [_figure(c, t, k, source, figures[0].x_range) for c, t, k in CHARTS[1:]]
    picker = pn.widgets.RadioButtonGroup(options=list(RANGES), value="7 d",
                                         css_classes=["range-picker"])
    state = {"last": None, "range": None}

    def load(_=None) -> None:
        span, every = RANGES[picker.value]
        newest = data("live", "newest")["ts"]
        since = newest - span if span and newest else None
        series = session.data.reader.battery_series(b["site_id"], battery_id, since, every)
        frame = local_columns(series) if not series.is_empty() else series
        source.data = {"ts": frame["ts"].to_list() if frame.height else [],
                       **{c: frame[c].to_list() if frame.height else [] for c, _, _ in CHARTS}}
        state["last"] = series["ts"].max() if series.height else None
        state["range"] = picker.value
        events = data("series", "discharge_events", b["site_id"], since)
        if not events.is_empty():
            events = events.filter(pl.col("string_id") == b["string_id"])
        _outages(figures, events)

    picker.param.watch(load, "value")
    load()

    def tick() -> None:
        row = status_row()
        readings.object = _readings(row)
        text = _rul(row)
        if rul.object != text:
            rul.object = text
        ts = (row or {}).get("reading_ts")
        if ts is None or state["last"] is None or ts <= state["last"] or picker.value == "all":
            return
        point = local_columns(pl.DataFrame([{"ts": ts, **{c: row[c] for c, _, _ in CHARTS}}]))
        source.stream({k: point[k].to_list() for k in source.data})
        state["last"] = ts

    session.on_tick(tick)
    history = data("slow", "rul_history", battery_id)
    quantiles = {"rul_p10_days": "P10 (pessimistic)", "rul_p50_days": "P50 (expected)",
                 "rul_p90_days": "P90 (optimistic)"}
    evolution = (to_pandas(history.rename(quantiles)).hvplot.line(
        "day", list(quantiles.values()), height=220, responsive=True, ylabel="RUL (days)",
        xlabel="scored day", title="How the forecast evolved", group_label="forecast")
        if history.height > 1 else html('<p class="empty">The forecast has no history yet '
                                        '(one scored day or none).</p>'))
    alerts = data("alerts", "alerts", battery_id=battery_id, limit=200)
    maintenance = data("slow", "maintenance", battery_id)
    maint_view = (pn.widgets.Tabulator(
        maintenance_frame(maintenance).to_pandas(), disabled=True, show_index=False,
        page_size=20, pagination="local", sizing_mode="stretch_width",
        css_classes=["maintenance-table"], titles=MAINTENANCE, formatters={
            "resistance_mohm": number_format(2), "measured_capacity_ah": number_format(1),
            "test_rate_hours": number_format(0)})
        if maintenance.height else html('<p class="empty">No maintenance on record.</p>'))
    content = pn.Column(
        pn.Row(html(_specs(b, now), sizing_mode="stretch_width"), readings, rul,
               sizing_mode="stretch_width"),
        pn.Row(html("<h2>Readings</h2>"), picker, html('<span class="note">Orange bands: '
                                                       'outage discharges of its string</span>')),
        *[pn.pane.Bokeh(f, sizing_mode="stretch_width") for f in figures],
        evolution,
        html("<h2>Alert history</h2>"), html(alerts_table(alerts, "No alerts for this battery.")),
        download_buttons(session, f"alerts-{battery_id}", lambda: alerts),
        html("<h2>Maintenance history</h2>"), maint_view,
        download_buttons(session, f"maintenance-{battery_id}", lambda: maintenance),
        sizing_mode="stretch_width")
    return f"Battery {battery_id}", content
