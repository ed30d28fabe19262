"""Replacement plan: what a manager budgets from. Blocks due in 90 / 180 / 365 days with their
expected date and interval, grouped by site and string (whole string where most of it is
due), cost per site from the prices in config; then the what-if: move a site's HVAC set point
or take away its HVAC faults and see expected replacements and cost over 1-3 years, computed
with the simulator's ageing physics from each battery's forecast, assumptions stated. The
fleet-health PDF report downloads from here too."""

from __future__ import annotations

import io
import re

import hvplot.pandas  # noqa: F401  (registers .hvplot)
import panel as pn
import polars as pl
from bokeh.models import NumberFormatter

from core import users
from dashboards.exports import download_buttons
from dashboards.format import esc, html, number_format, stat_card, to_pandas, yes_no
from reporting import planning

HORIZONS = {"90 days": 90, "180 days": 180, "365 days": 365}


def _money(value: float, currency: str) -> str:
    return f"{value:,.0f} {currency}"


def _titles(frame: pl.DataFrame, currency: str) -> dict[str, str]:
    """Column titles a manager reads: words, days and the currency instead of field names."""
    words = {"site_id": "site", "string_id": "string", "battery_id": "battery",
             "battery_model": "model", "strings_whole": "whole strings",
             "unscored": "no forecast", "blocks_due": "blocks due", "share_due": "share due (%)",
             "whole_string": "whole string suggested", "earliest_date": "earliest date",
             "expected_date": "expected date (P50)", "latest_date": "latest date (P90)",
             "due_within": "due within (days, P50)", "due_p10_within": "due within (days, P10)",
             "cost": f"cost ({currency})", "unit_cost": f"unit cost ({currency})"}
    for column in frame.columns:
        if match := re.fullmatch(r"(blocks_due|cost)_(\d+)", column):
            kind = "blocks due" if match[1] == "blocks_due" else f"cost ({currency})"
            words[column] = f"{kind}, {match[2]} d"
    return {c: words.get(c, c.replace("_", " ")) for c in frame.columns}


def _is_cost(column: str) -> bool:
    return column.startswith(("cost", "unit_cost"))


def table_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """What the plan tables show: dates without a time of day (ISO text, so they sort right),
    money in whole units, shares in percent to a tenth, flags as Yes/No, other figures to a
    tenth; numbers stay numbers, so the columns sort by value."""
    kinds = frame.schema.items()
    return frame.with_columns(
        [pl.col(c).dt.strftime("%Y-%m-%d") for c, t in kinds
         if isinstance(t, pl.Datetime | pl.Date)]
        + [pl.col(c).round(0).cast(pl.Int64) for c in frame.columns if _is_cost(c)]
        + [(pl.col(c) * 100).round(1) for c, t in kinds if c.startswith("share") and t.is_float()]
        + [pl.col(c).replace_strict({v: yes_no(v) for v in (True, False)}, default=None,
                                    return_dtype=pl.String) for c, t in kinds if t == pl.Boolean]
        + [pl.col(c).round(1) for c, t in kinds
           if t.is_float() and not _is_cost(c) and not c.startswith("share")])


def formatters(frame: pl.DataFrame) -> dict[str, NumberFormatter]:
    """Thousands separated as the cards write them; whole numbers stay whole, the rest (already
    rounded) show a tenth."""
    return {c: number_format(0 if t.is_integer() else 1) for c, t in frame.schema.items()
            if t.is_numeric() and c != "position"}


def _table(frame: pl.DataFrame, css: str, currency: str, **kwargs) -> pn.widgets.Tabulator:
    shown = table_frame(frame)
    return pn.widgets.Tabulator(to_pandas(shown), disabled=True, show_index=False,
                                pagination="local", page_size=50, sizing_mode="stretch_width",
                                css_classes=[css], titles=_titles(frame, currency),
                                formatters=formatters(shown), **kwargs)


def _plan_view(session, reader, horizon: int) -> pn.Column:
    plan = planning.replacement_plan(reader, horizon)
    col = f"cost_{horizon}"
    sites = plan.sites.sort(col, descending=True)
    due = plan.batteries.filter(pl.col("due_within").is_not_null())
    total = float(sites[col].sum()) if sites.height else 0.0
    whole = plan.strings.filter(pl.col("whole_string"))
    cards = html('<div class="cards">' + "".join([
        stat_card(f"Blocks due within {horizon} d", f"{due.height:,}", "by the expected (P50) date",
                  "warn" if due.height else "ok", name="due"),
        stat_card("Also due by the pessimistic P10", f"{plan.batteries.height - due.height:,}",
                  "listed, not costed", name="due-p10"),
        stat_card("Whole strings suggested", f"{whole.height:,}", "most blocks of the string due",
                  name="whole"),
        stat_card(f"Estimated cost, {horizon} d", _money(total, plan.currency),
                  "prices from the costs config", name="cost"),
        stat_card("Without a forecast", f"{plan.unscored:,}", "insufficient or stale data: "
                  "not in the plan", "warn" if plan.unscored else "ok", name="unscored"),
    ]) + "</div>", sizing_mode="stretch_width")
    site_cols = ["site_id", *[c for c in plan.sites.columns if c.startswith(("blocks_due", "cost"))],
                 "strings_whole", "unscored"]
    strings = plan.strings.filter(pl.col("blocks_due") > 0).sort("earliest_date")
    blocks = plan.batteries.sort("expected_date")
    return pn.Column(
        cards,
        html("<h2>Cost per site</h2><p class='note'>Each horizon includes the shorter ones; "
             "one visit per string (fixed cost) plus the blocks, or the whole string.</p>"),
        _table(sites.select(site_cols), "plan-sites", plan.currency),
        download_buttons(session, f"plan-sites-{horizon}d", lambda: sites.select(site_cols)),
        html("<h2>By site and string</h2>"),
        _table(strings.sort("site_id", "earliest_date"), "plan-strings", plan.currency,
               groupby=["site_id"]),
        download_buttons(session, f"plan-strings-{horizon}d", lambda: strings),
        html("<h2>Blocks</h2><p class='note'>Expected date = scored day + P50; the interval runs "
             "from the P10 date (earliest) to the P90 date.</p>"),
        _table(blocks.select("battery_id", "site_id", "string_id", "position", "battery_model",
                             "expected_date", "earliest_date", "latest_date", "due_within",
                             "due_p10_within", "unit_cost"), "plan-blocks", plan.currency),
        download_buttons(session, f"plan-blocks-{horizon}d", lambda: blocks),
        sizing_mode="stretch_width")


def _what_if_view(session, reader, site_id: str, delta: float, remove: bool) -> pn.Column:
    try:
        result = planning.what_if(reader, site_id, delta, remove)
    except ValueError as exc:
        return pn.Column(html(f'<p class="empty">{esc(exc)}</p>'))
    horizons = result.horizons
    rows = "".join(
        f"<tr><td>{h['years']} year{'s' if h['years'] > 1 else ''}</td>"
        f"<td>{h['baseline_replacements']} ({h['baseline_low']}–{h['baseline_high']})</td>"
        f"<td>{h['scenario_replacements']} ({h['scenario_low']}–{h['scenario_high']})</td>"
        f"<td><b>{h['delta_replacements']:+d}</b></td>"
        f"<td>{_money(h['baseline_cost'], result.currency)}</td>"
        f"<td>{_money(h['scenario_cost'], result.currency)}</td>"
        f"<td><b>{h['delta_cost']:+,.0f} {result.currency}</b></td></tr>"
        for h in horizons.iter_rows(named=True))
    table = (f'<table class="grid" id="whatif-table"><thead><tr><th>Horizon</th>'
             f"<th>Replacements now</th><th>With the change</th><th>Change</th><th>Cost now</th>"
             f"<th>Cost with the change</th><th>Change</th></tr></thead><tbody>{rows}</tbody>"
             f"</table><p class='note'>Replacements by each battery's P50 (range: by its P90 "
             f"to its P10). Mean room {result.mean_room_c_baseline:.1f} °C → "
             f"{result.mean_room_c_scenario:.1f} °C; life × {result.life_ratio:.3f}.</p>")
    year = result.year.group_by_dynamic("ts", every="1d").agg(
        pl.col("room_temp_c", "scenario_room_c").mean())
    chart = to_pandas(year).hvplot.line(
        "ts", ["room_temp_c", "scenario_room_c"], height=240, responsive=True,
        ylabel="room °C (daily mean)", xlabel="the last year (Asia/Bangkok)",
        title="Room temperature: as recorded, and with the change")
    assumptions = "".join(f"<li>{esc(a)}</li>" for a in result.assumptions)
    return pn.Column(html(table, sizing_mode="stretch_width"), chart,
                     html(f"<h3>Assumptions</h3><ul id='whatif-assumptions'>{assumptions}</ul>",
                          sizing_mode="stretch_width"),
                     download_buttons(session, f"whatif-{site_id}", lambda: horizons),
                     sizing_mode="stretch_width")


def _report_button(session, reader) -> pn.viewable.Viewable:
    if not session.can(users.EXPORT):
        return pn.Row()

    def build() -> io.BytesIO:
        from reporting.pdf import report_bytes

        return io.BytesIO(report_bytes(reader))

    return pn.widgets.FileDownload(callback=build, filename="fleet-health.pdf",
                                   label="Fleet-health report (PDF)", button_type="primary",
                                   css_classes=["report-pdf"], width=230)


def build(session, app) -> tuple[str, pn.viewable.Viewable]:
    reader = session.data.reader
    horizon = pn.widgets.RadioButtonGroup(options=list(HORIZONS), value="365 days",
                                          css_classes=["horizon-picker"])
    plan_view = pn.Column(_plan_view(session, reader, 365), sizing_mode="stretch_width")
    horizon.param.watch(lambda e: plan_view.__setitem__(
        0, _plan_view(session, reader, HORIZONS[e.new])), "value")

    sites = session.data("slow", "table", "sites")
    site_ids = sites.get_column("site_id").to_list() if not sites.is_empty() else []
    site = pn.widgets.Select(name="Site", options=site_ids, css_classes=["whatif-site"], width=200)
    delta = pn.widgets.FloatSlider(name="HVAC set point change (°C)", start=-4, end=4, step=0.5,
                                   value=-2, css_classes=["whatif-delta"], width=260)
    remove = pn.widgets.Checkbox(name="Remove HVAC faults (degraded and failed hours)",
                                 css_classes=["whatif-faults"])
    run = pn.widgets.Button(name="Compute what-if", button_type="primary",
                            css_classes=["whatif-run"])
    result = pn.Column(html('<p class="note">Pick a site and a change, then compute.</p>'),
                       sizing_mode="stretch_width")

    def compute(_=None) -> None:
        if site.value:
            result[:] = [_what_if_view(session, reader, site.value, delta.value, remove.value)]

    run.on_click(compute)
    content = pn.Column(
        pn.Row(horizon, _report_button(session, reader)), plan_view,
        html("<h2>What-if: the climate's effect on battery life</h2><p class='note'>Physics, "
             "not a rule of thumb: each battery's forecast is converted to remaining life at "
             "the reference temperature with the simulator's Arrhenius law over the site's "
             "last year of room readings, then spent again at the changed temperatures.</p>",
             sizing_mode="stretch_width"),
        pn.Row(site, delta, remove, run), result, sizing_mode="stretch_width")
    return "Replacement plan", content
