"""Site page, for the site engineer: where the site is and what season it is, the room right
now, every block with its newest reading and forecast (filter, search, sort, 50 a page), and
the strings drawn block by block so a weak or imbalanced block stands out."""

from __future__ import annotations

import datetime as dt

import numpy as np
import panel as pn
import polars as pl

from dashboards.exports import download_buttons
from dashboards.format import badge, days, esc, html, link, local, number_format, to_pandas
from dashboards.strings import StringsView
from simulator.thresholds import season_of

SEASONS = {"hot": "hot season (Mar–May)", "rainy": "rainy season (Jun–Oct)",
           "cool": "cool season (Nov–Feb)"}
FILTERS = ("all", "healthy", "warning", "critical", "unknown")
R_NOTE = ("R vs baseline: the newest resistance reading against the block's own baseline, "
          "both corrected to 25 °C as the model corrects them (ohmic values fall about 1 % per "
          "°C as a block warms, so a block in a hot room would otherwise look healthier).")
LIVE_COLUMNS = ["voltage_v", "temperature_c", "resistance_vs_baseline_pct", "reading_ts"]


def _interval(row: dict) -> str:
    if row.get("rul_status") != "ok" or row.get("rul_p50_days") is None:
        return {"insufficient_data": "insufficient data", "stale_data": "stale data"}.get(
            row.get("rul_status"), "no prediction yet")
    return (f"{row['rul_p50_days']:,.0f} d ({row['rul_p10_days']:,.0f}–"
            f"{row['rul_p90_days']:,.0f})")


def table_frame(status: pl.DataFrame) -> pl.DataFrame:
    """The battery table's columns (HTML helpers start with `_`, exports drop them)."""
    rows = status.to_dicts()
    return status.select(
        "battery_id", "string_id", "position", "voltage_v", "temperature_c", "resistance_mohm",
        "resistance_vs_baseline_pct", "rul_p10_days", "rul_p50_days", "rul_p90_days",
        "status", "reading_ts",
    ).with_columns(
        pl.col("voltage_v", "temperature_c").cast(pl.Float64).round(2),
        pl.col("resistance_vs_baseline_pct").round(1),
        _battery=pl.Series([link(f"/battery?id={r['battery_id']}", r["battery_id"]) for r in rows]),
        _rul=pl.Series([_interval(r) for r in rows]),
        _status=pl.Series([badge(r["status"]) for r in rows]),
    )


def _environment(env: dict | None, site: dict) -> str:
    if not env:
        return '<p class="empty">No room readings yet.</p>'
    grid = "up" if env["grid_up"] else '<b class="crit">DOWN (on battery)</b>'
    hvac = env["hvac_state"] if env["hvac_state"] == "normal" else f'<b>{esc(env["hvac_state"])}</b>'
    return (f'<div class="card" id="environment"><dl class="kv">'
            f'<dt>Room</dt><dd>{env["room_temp_c"]:.1f} °C (set point '
            f'{site["hvac_setpoint_c"]:.0f} °C)</dd>'
            f'<dt>Outdoor</dt><dd>{env["outdoor_temp_c"]:.1f} °C</dd>'
            f'<dt>Humidity</dt><dd>{env["humidity_pct"]:.0f} %</dd>'
            f'<dt>HVAC</dt><dd>{hvac}</dd><dt>Grid</dt><dd>{grid}</dd>'
            f'<dt>As of</dt><dd>{esc(local(env["ts"]))}</dd></dl></div>')


def _about(site: dict, climate: pl.DataFrame, now: dt.datetime | None) -> str:
    season = SEASONS[season_of(now)] if now else "—"
    if climate.is_empty():
        text = "no climate history"
    else:
        c = climate.select(pl.col("outdoor_temp_c").mean().alias("mean"),
                           pl.col("outdoor_temp_c").max().alias("max"),
                           pl.col("room_temp_c").mean().alias("room")).row(0, named=True)
        text = (f"last 30 days outdoor {c['mean']:.1f} °C mean, {c['max']:.1f} °C max; "
                f"room {c['room']:.1f} °C mean")
    return (f'<div class="card"><dl class="kv"><dt>Site</dt><dd>{esc(site["name"])} '
            f'({esc(site["site_id"])})</dd><dt>Region</dt><dd>{esc(site["region"])}</dd>'
            f'<dt>Season now</dt><dd>{season}</dd><dt>Climate</dt><dd>{text}</dd>'
            f'<dt>Commissioned</dt><dd>{site["commissioned"]}</dd></dl>'
            f'<p><a href="/alerts?site={esc(site["site_id"])}">Alerts of this site</a></p></div>')


def build(session, app) -> tuple[str, pn.viewable.Viewable]:
    data = session.data
    site_id = (pn.state.session_args.get("id") or [b""])[0].decode()
    sites = data("slow", "table", "sites")
    match = sites.filter(pl.col("site_id") == site_id) if not sites.is_empty() else sites
    if match.is_empty():
        known = ", ".join(link(f"/site?id={s}", s) for s in sites.get_column("site_id")) \
            if not sites.is_empty() else "none yet"
        return "Site not found", html(f'<p class="empty">No site {esc(site_id)!s}. Sites: '
                                      f"{known}</p>")
    site = match.row(0, named=True)
    status = data("status", "battery_status", site_id)
    now = data("live", "newest")["ts"]

    def env_html() -> str:
        env = data("live", "latest_environment")
        row = env.filter(pl.col("site_id") == site_id) if not env.is_empty() else env
        return _environment(row.row(0, named=True) if row.height else None, site)

    hour = now.replace(minute=0, second=0, microsecond=0) if now else None  # shared cache key
    climate = data("series", "environment_series", hour - dt.timedelta(days=30), site_id, "1d") \
        if now else pl.DataFrame()
    env_pane = html(env_html(), sizing_mode="stretch_width")
    frame = table_frame(status)
    shown = ["battery_id", "_battery", "string_id", "position", "voltage_v", "temperature_c",
             "resistance_vs_baseline_pct", "_rul", "_status"]
    table = pn.widgets.Tabulator(
        to_pandas(frame.select(shown)), pagination="remote", page_size=50, disabled=True,
        show_index=False, sizing_mode="stretch_width", css_classes=["battery-table"],
        hidden_columns=["battery_id"],
        formatters={"_battery": {"type": "html"}, "_status": {"type": "html"},
                    "voltage_v": number_format(2), "temperature_c": number_format(1),
                    "resistance_vs_baseline_pct": number_format(1)},
        titles={"_battery": "battery", "string_id": "string", "voltage_v": "voltage (V)",
                "temperature_c": "temp (°C)",
                "resistance_vs_baseline_pct": "R vs baseline at 25 °C (%)",
                "_rul": "RUL P50 (P10–P90)", "_status": "status"})
    status_filter = pn.widgets.RadioButtonGroup(options=list(FILTERS), value="all",
                                                css_classes=["status-filter"])
    search = pn.widgets.TextInput(placeholder="search battery id", css_classes=["battery-search"],
                                  width=260)

    def visible(df, status_value, text):
        statuses = frame.get_column("status").to_numpy()
        mask = (statuses == status_value) if status_value != "all" else np.ones(len(statuses), bool)
        if text:
            mask &= frame.get_column("battery_id").str.contains(text.strip(), literal=True) \
                .to_numpy()
        return df[mask[df.index.to_numpy()]]

    table.add_filter(pn.bind(visible, status_value=status_filter, text=search))
    # the strings are drawn at the first refresh, once the table is on screen: drawn with the
    # page, their nine charts held the table back by about a second in the browser
    strings: list[StringsView] = []
    strings_pane = pn.Column(html('<p class="note">Drawing the strings…</p>'),
                             sizing_mode="stretch_width")
    seen = {"ts": now}

    def tick() -> None:
        env_pane.object = env_html()
        if not strings:
            strings.append(StringsView(data("status", "battery_status", site_id)))
            strings_pane[:] = [strings[0].pane]
        newest = data("live", "newest")["ts"]
        if newest == seen["ts"]:
            return
        seen["ts"] = newest
        fresh = table_frame(data("status", "battery_status", site_id))
        if fresh.height == frame.height and fresh["battery_id"].equals(frame["battery_id"]):
            patch = to_pandas(fresh.select("voltage_v", "temperature_c",
                                           "resistance_vs_baseline_pct", "_rul", "_status"))
            table.patch(patch, as_index=True)
            frame.replace_column(frame.get_column_index("status"), fresh["status"])
        for view in strings:
            view.update(data("status", "battery_status", site_id))

    session.on_tick(tick)
    exports = download_buttons(session, f"batteries-{site_id}",
                               lambda: frame.filter(pl.col("battery_id").is_in(
                                   table.current_view["battery_id"].tolist())))
    counts = status.group_by("status").len().sort("status").rows()
    summary = " · ".join(f"{badge(s)} {n}" for s, n in counts)
    content = pn.Column(
        pn.Row(html(_about(site, climate, now), sizing_mode="stretch_width"), env_pane,
               sizing_mode="stretch_width"),
        html(f"<h2>Batteries</h2><p>{summary} · worst RUL P10 "
             f"{days(status['rul_p10_days'].min() if 'rul_p10_days' in status.columns else None)}"
             "</p>"),
        pn.Row(status_filter, search, exports), table,
        html(f'<p class="note" id="r-note">{esc(R_NOTE)}</p>', sizing_mode="stretch_width"),
        html("<h2>Strings: block voltage against the string median</h2><p class='note'>A block "
             "far below its string's median is weak or shorted; a whole string spread wide is "
             "imbalanced.</p>"), strings_pane,
        sizing_mode="stretch_width")
    return f"{site['name']} ({site_id})", content
