"""Fleet overview: the manager's first screen. Stat cards, the nine sites, the newest alerts,
the RUL distribution, replacements per month for the next year with their interval, and room
temperature by site. Cards, sites and alerts follow the live data; charts follow the scores."""

from __future__ import annotations

import datetime as dt

import holoviews as hv
import hvplot.pandas  # noqa: F401  (registers .hvplot)
import panel as pn
import polars as pl

from dashboards.exports import download_buttons
from dashboards.format import badge, days, deferred, esc, html, link, local, stat_card
from dashboards.sitemap import site_map

RUL_CAP_DAYS = 3650  # the histogram's last bin holds everything beyond ten years


def _cards(summary: dict) -> str:
    share = summary["healthy_share"]
    return '<div class="cards">' + "".join([
        stat_card("Batteries in service", f"{summary['in_service']:,}",
                  f"{summary['scored']:,} with a forecast", name="in-service"),
        stat_card("Open alerts", f"{summary['live_alerts']:,}", "open or acknowledged",
                  "warn" if summary["live_alerts"] else "ok", name="open-alerts"),
        stat_card("Critical alerts", f"{summary['critical_alerts']:,}", "",
                  "crit" if summary["critical_alerts"] else "ok", name="critical-alerts"),
        stat_card("Healthy", "—" if share is None else f"{share:.1%}",
                  "no alert, RUL P10 beyond the warning", "ok", name="healthy"),
        stat_card("RUL P10 < 90 days", f"{summary['p10_below_90']:,}", "replace now",
                  "crit" if summary["p10_below_90"] else "ok", name="p10-90"),
        stat_card("RUL P10 < 180 days", f"{summary['p10_below_180']:,}", "plan replacement",
                  "warn" if summary["p10_below_180"] else "ok", name="p10-180"),
    ]) + "</div>"


def _site_cards(sites: pl.DataFrame) -> str:
    if sites.is_empty():
        return '<p class="empty">No sites published yet: run `make pipeline`.</p>'
    cards = []
    for s in sites.iter_rows(named=True):
        hvac = s.get("hvac_state") or "—"
        grid = "—" if s.get("grid_up") is None else ("up" if s["grid_up"] else "DOWN")
        room = "—" if s.get("room_temp_c") is None else f"{s['room_temp_c']:.1f} °C"
        cards.append(
            f'<div class="card site-card" id="site-{esc(s["site_id"])}">'
            f'<h3>{link("/site?id=" + s["site_id"], s["site_id"])}</h3>'
            f'<div class="meta">{esc(s["name"])} · {esc(s["region"])}</div><dl>'
            f'<dt>Batteries</dt><dd>{s.get("batteries") or 0:,}</dd>'
            f'<dt>Open alerts</dt><dd>{s["live_alerts"]:,}</dd>'
            f'<dt>Room</dt><dd>{room}</dd><dt>HVAC / grid</dt><dd>{esc(hvac)} / {grid}</dd>'
            f'<dt>Worst RUL P10</dt><dd>{days(s.get("worst_p10_days"))}</dd></dl></div>')
    return '<div class="sites">' + "".join(cards) + "</div>"


def alerts_table(alerts: pl.DataFrame, empty: str = "No alerts.") -> str:
    if alerts.is_empty():
        return f'<p class="empty">{esc(empty)}</p>'
    rows = "".join(
        f"<tr><td>{badge(a['severity'])}</td><td>{esc(local(a['opened_at']))}</td>"
        f"<td>{link('/site?id=' + a['site_id'], a['site_id'])}</td>"
        f"<td>{link('/battery?id=' + a['battery_id'], a['battery_id']) if a['battery_id'] else esc(a['string_id'] or '')}</td>"
        f"<td>{esc(a['type'])}</td><td>{esc(a['message'])}</td><td>{badge(a['status'])}</td></tr>"
        for a in alerts.iter_rows(named=True))
    return ('<table class="grid" id="latest-alerts"><thead><tr><th>Severity</th><th>Opened</th>'
            '<th>Site</th><th>Battery / string</th><th>Type</th><th>What</th><th>Status</th>'
            f"</tr></thead><tbody>{rows}</tbody></table>")


def _rul_histogram(status: pl.DataFrame):
    scored = status.filter(pl.col("rul_p50_days").is_not_null()) if "rul_p50_days" in \
        status.columns else pl.DataFrame()
    if scored.is_empty():
        return html('<p class="empty">No prediction yet: the fleet has not been scored.</p>')
    frame = scored.select(rul_p50_days=pl.col("rul_p50_days").clip(0, RUL_CAP_DAYS)).to_pandas()
    return frame.hvplot.hist("rul_p50_days", bins=40, height=260, responsive=True,
                             xlabel=f"RUL P50 (days; {RUL_CAP_DAYS:,}+ in the last bin)",
                             ylabel="batteries", color="#1d4e7a")


def _forecast_chart(predictions: pl.DataFrame):
    from models.replacement import forecast_by_month

    usable = predictions.filter(pl.col("status") == "ok") if "status" in predictions.columns \
        else pl.DataFrame()
    if usable.is_empty():
        return html('<p class="empty">No prediction yet: no replacement forecast.</p>')
    months = forecast_by_month(predictions, months=12).with_columns(
        label=pl.col("month").cast(pl.String).str.slice(0, 7)).to_pandas()
    bars = months.hvplot.bar("label", "expected", height=260, responsive=True, color="#2b6cb0",
                             xlabel="month", ylabel="batteries reaching end of life (P50)")
    spread = hv.ErrorBars((months["label"], months["expected"],
                           months["expected"] - months["low"], months["high"] - months["expected"]),
                          vdims=["y", "yerrneg", "yerrpos"])
    return (bars * spread).opts(title="Expected replacements per month (bar: P50; whiskers: "
                                      "P90 to P10 dates)")


def _temperature_chart(env: pl.DataFrame):
    if env.is_empty():
        return html('<p class="empty">No room temperature readings yet.</p>')
    frame = env.with_columns(pl.col("ts").dt.convert_time_zone("Asia/Bangkok")
                             .dt.replace_time_zone(None)).to_pandas()
    return frame.hvplot.line("ts", "room_temp_c", by="site_id", height=300, responsive=True,
                             xlabel="time (Asia/Bangkok)", ylabel="room temperature (°C)",
                             legend="right")


def build(session, app) -> tuple[str, pn.viewable.Viewable]:
    data = session.data
    status = data("status", "battery_status")
    cards = html(_cards(data("status", "summary")), sizing_mode="stretch_width")
    sites = data("status", "site_overview")
    grid = html(_site_cards(sites), sizing_mode="stretch_width")
    latest = html(alerts_table(data("alerts", "alerts", limit=10)), sizing_mode="stretch_width")
    newest = data("live", "newest")["ts"] or dt.datetime.now(dt.UTC)
    week = newest.replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=7)
    seen = {"alerts": data("alerts", "alerts_version")}

    def tick() -> None:
        text = _cards(data("status", "summary"))  # once per server, not once per session
        if cards.object != text:
            cards.object = text
        text = _site_cards(data("status", "site_overview"))
        if grid.object != text:
            grid.object = text
        version = data("alerts", "alerts_version")
        if version != seen["alerts"]:
            seen["alerts"] = version
            latest.object = alerts_table(data("alerts", "alerts", limit=10))

    session.on_tick(tick)
    content = pn.Column(
        cards, pn.Row(html("<h2>Sites</h2>"), download_buttons(
            session, "sites", lambda: data("status", "site_overview"))),
        pn.Row(deferred(lambda: site_map(sites), width=320), grid, sizing_mode="stretch_width"),
        pn.Row(html("<h2>Latest alerts</h2>"), download_buttons(
            session, "latest-alerts", lambda: data("alerts", "alerts", limit=10))),
        latest, html('<p><a href="/alerts">All alerts</a></p>'),
        pn.Row(pn.Column(html("<h2>RUL distribution</h2>"),
                         deferred(lambda: _rul_histogram(status), sizing_mode="stretch_width"),
                         sizing_mode="stretch_width"),
               pn.Column(html("<h2>Replacement forecast, next 12 months</h2>"),
                         deferred(lambda: _forecast_chart(data("slow", "latest_predictions")),
                                  sizing_mode="stretch_width"),
                         sizing_mode="stretch_width"), sizing_mode="stretch_width"),
        html("<h2>Room temperature by site, last 7 days</h2>"),
        deferred(lambda: _temperature_chart(
            data("series", "environment_series", week, None, "1h")), sizing_mode="stretch_width"),
        sizing_mode="stretch_width")
    return "Fleet overview", content
