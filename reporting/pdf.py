"""The fleet-health report as a PDF, for managers who budget and plan from paper: who is in
service and how healthy, per site, the replacement plan and its cost (`models.replacement`),
and three charts (RUL P50 distribution, end-of-life forecast per month, room temperatures).

Plain functions over a `FleetReader`; reportlab is imported inside them (the dashboards import
this module on start-up); the charts are drawn in `reporting.pdf_charts`. A missing value is
written as missing ("no prediction yet", "no reading"), never as a zero. `fleet_report` writes
atomically, so no half-written PDF is ever visible; `report_bytes` builds in memory for a
download."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import polars as pl

from reporting.fleet import LOCAL_TZ, FleetReader
from reporting.pdf_charts import Chart, forecast_chart, rul_histogram, temperature_chart
from reporting.pdf_drill import DRILL_NOTE, drill_band, simulation
from simulator.atomic import atomic_path

NO_PREDICTION = "no prediction yet"
FLEET_NAME = "Thai Battery Fleet"
PERIOD_DAYS = 30  # the period the report covers: the 30 days up to the newest reading
REASONS = {  # why a battery in service has no usable RUL forecast (README: `rul predict`)
    "insufficient_data": "too little usable history (under 14 days, or a measurement "
                         "missing or stuck)",
    "stale_data": "no readings for over a week",
    "missing": "not scored yet",
}
UTC, LOCAL = dt.UTC, ZoneInfo(LOCAL_TZ)
NAVY, PALE, GRID = "#1F3A5F", "#EEF1F5", "#B0B7C3"


@dataclass(frozen=True)
class ReportSummary:
    path: Path
    pages: int
    bytes: int
    sites: int
    batteries: int


def fleet_report(reader: FleetReader, out: Path, *, costs_path: Path | None = None,
                 now: dt.datetime | None = None, fleet_name: str | None = None) -> ReportSummary:
    """Write the report to `out` (atomically: a reader sees the old file or the new one)."""
    out = Path(out)
    with atomic_path(out) as tmp, tmp.open("wb") as fh:
        pages, sites, batteries = _build(reader, fh, costs_path, now, fleet_name)
    return ReportSummary(out, pages, out.stat().st_size, sites, batteries)


def report_bytes(reader: FleetReader, *, costs_path: Path | None = None,
                 now: dt.datetime | None = None, fleet_name: str | None = None) -> bytes:
    """The same report built in memory (the dashboards' on-demand download)."""
    buffer = io.BytesIO()
    _build(reader, buffer, costs_path, now, fleet_name)
    return buffer.getvalue()


def _when(ts: dt.datetime, tz: dt.tzinfo) -> str:
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _num(value: Any, fmt: str = "{:,.0f}", missing: str = NO_PREDICTION) -> str:
    return missing if value is None else fmt.format(value)


class _Kit:
    """The report's styles and the few flowables it is made of (reportlab imported here)."""

    def __init__(self) -> None:
        from reportlab.lib.pagesizes import A4
        from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
        from reportlab.lib.units import mm
        from reportlab.platypus import Image, KeepTogether, PageBreak, Paragraph, Table

        self.Image, self.Keep, self.PageBreak, self.P, self.Table = (
            Image, KeepTogether, PageBreak, Paragraph, Table)
        self.page, self.mm = A4, mm
        self.width = A4[0] - 36 * mm - 12  # the frame's text width (6 pt padding each side)
        base, style = getSampleStyleSheet(), ParagraphStyle
        self.body = style("body", base["BodyText"], fontSize=9, leading=12, spaceAfter=4)
        self.small = style("small", self.body, fontSize=7.5, leading=9.5, textColor="#444444")
        self.cell = style("cell", self.body, fontSize=8, leading=10, spaceAfter=0)
        self.head = style("head", self.cell, fontName="Helvetica-Bold", textColor="white")
        self.h1 = style("h1", base["Title"], fontSize=20, leading=24, alignment=0)
        self.h2 = style("h2", base["Heading2"], fontSize=12.5, leading=15, spaceBefore=8,
                        spaceAfter=4, textColor=NAVY)
        self.h3 = base["Heading3"]

    def table(self, rows: list[list[Any]], widths: list[float], extra: list | None = None,
              header_rows: int = 1) -> Any:
        """A full-width grid; `widths` are relative; the first row is the header unless 0."""
        from reportlab.platypus import TableStyle

        total = sum(widths)
        head = [("BACKGROUND", (0, 0), (-1, 0), NAVY), ("TEXTCOLOR", (0, 0), (-1, 0), "white"),
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold")] if header_rows else []
        t = self.Table(rows, colWidths=[w / total * self.width for w in widths],
                       repeatRows=header_rows, hAlign="LEFT")
        t.setStyle(TableStyle([
            ("GRID", (0, 0), (-1, -1), 0.4, GRID), ("FONTSIZE", (0, 0), (-1, -1), 8),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("TOPPADDING", (0, 0), (-1, -1), 2.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5), *head, *(extra or [])]))
        return t

    def facts(self, pairs: list[tuple[str, str]], key_width: float) -> Any:
        """Label and value rows; both are plain text (escaped: a Paragraph reads markup)."""
        rows = [[self.P(f"<b>{escape(k)}</b>", self.cell), self.P(escape(v), self.cell)]
                for k, v in pairs]
        return self.table(rows, [key_width, 1 - key_width],
                          [("BACKGROUND", (0, 0), (0, -1), PALE)], header_rows=0)

    def chart(self, chart: Chart) -> Any:
        """A chart's PNG at the text width and its own aspect."""
        return self.Image(io.BytesIO(chart.png), width=self.width,
                          height=self.width * chart.aspect)

    def placeholder(self, text: str) -> Any:
        return self.table([[self.P(text, self.body)]], [1], [
            ("TOPPADDING", (0, 0), (-1, -1), 10), ("BOTTOMPADDING", (0, 0), (-1, -1), 6)],
            header_rows=0)


def _build(reader: FleetReader, target: BinaryIO, costs_path: Path | None,
           now: dt.datetime | None, fleet_name: str | None) -> tuple[int, int, int]:
    from reportlab.platypus import SimpleDocTemplate

    from models import replacement

    now = (now or dt.datetime.now(UTC)).astimezone(UTC)
    status = reader.battery_status()
    summary = reader.summary(status)
    sites = reader.site_overview(status) if status.height else reader.table("sites")
    predictions = reader.latest_predictions()
    newest = reader.newest()
    end = newest["ts"]
    plan = forecast = None
    if "status" in predictions.columns and predictions.height:
        plan = replacement.plan(predictions, reader.batteries(),
                                replacement.load_costs(costs_path))
        forecast = replacement.forecast_by_month(predictions)
    env = (reader.environment_series(end - dt.timedelta(days=PERIOD_DAYS), every="1d")
           if end is not None else pl.DataFrame())
    name = fleet_name or FLEET_NAME
    drill = simulation(reader.simulator()["control"].get("scenarios", []))
    config = reader.settings.fleet_config
    k = _Kit()
    P, mm = k.P, k.mm

    # -- header ------------------------------------------------------------------------
    period = reading = "no readings yet"
    if end is not None:
        period = (f"{(end - dt.timedelta(days=PERIOD_DAYS)).astimezone(LOCAL):%d %b %Y} to "
                  f"{end.astimezone(LOCAL):%d %b %Y} (the {PERIOD_DAYS} days to the newest "
                  "reading)")
        reading = (f"{_when(end, LOCAL)} Asia/Bangkok ({_when(end, UTC)} UTC)"
                   + ("" if newest.get("live") else ", end of the simulated history"))
    forecasts = NO_PREDICTION
    if plan is not None:
        versions = ", ".join(str(v) for v in predictions["model_version"].unique().sort())
        forecasts = (f"scored for {_when(predictions['as_of'].max(), UTC)} UTC by model "
                     f"version {versions}")
    n = summary["in_service"]
    story: list[Any] = [P("Fleet health report", k.h1), P(escape(name), k.h3), k.facts([
        *([("Simulation", drill + DRILL_NOTE)] if drill else []),
        ("Fleet", f"{name}: {sites.height} sites, {n:,} batteries in service"
                  + (f" (fleet config {Path(config).name})" if config else "")),
        ("Period", period), ("Newest reading", reading), ("RUL forecasts", forecasts),
        ("Generated at", f"{_when(now, UTC)} UTC")], 0.2)]

    story += [P("Summary", k.h2), k.facts(_summary_facts(summary, status), 0.3),
              P("Status is the worse of a battery's RUL risk (on its P10, the pessimistic bound) "
                "and its worst live alert; <i>unknown</i> when it has neither a forecast nor an "
                "alert.", k.small),
              P("Sites", k.h2), _site_table(sites, k),
              P("Room temperature: the newest reading. Worst RUL P10: the shortest pessimistic "
                "remaining life among the site's blocks.", k.small)]
    p50 = status.get_column("rul_p50_days").drop_nulls() if "rul_p50_days" in status.columns \
        else pl.Series([], dtype=pl.Float64)
    story.append(k.Keep([P("RUL distribution", k.h2), *(
        [k.chart(rul_histogram(p50)),
         P("Dashed lines: 90, 180 and 365 days, the alert and budget horizons.", k.small)]
        if p50.len() else [k.placeholder(f"RUL P50 distribution: {NO_PREDICTION}.")])]))

    # -- replacement plan, end-of-life forecast, room temperature ----------------------
    story += [k.PageBreak(), P("Replacement plan", k.h2)]
    if plan is None or forecast is None:
        story.append(k.placeholder(f"Replacement plan and forecast: {NO_PREDICTION} (the plan "
                                   "is built from the RUL forecasts)."))
    else:
        story += [*_plan_tables(plan, k), k.Keep([
            P("Blocks reaching end of life per month", k.h2), k.chart(forecast_chart(forecast)),
            P("Bars: blocks whose P50 date falls in the month. Error bars: the fewest to the most "
              "of the counts by the P10, P50 and P90 dates.", k.small)])]
    story.append(k.Keep([P(f"Room temperature by site, last {PERIOD_DAYS} days", k.h2), *(
        [k.placeholder("Room temperature: no readings in the period.")] if env.is_empty() else
        [k.chart(temperature_chart(env)),
         P("Daily mean of each site's battery-room temperature (UTC days). VRLA life halves for "
           "about every 8 to 10 °C above 25 °C.", k.small)])]))

    pages = [0]

    def footer(canvas: Any, _doc: Any) -> None:
        pages[0] = max(pages[0], canvas.getPageNumber())
        canvas.saveState()
        if drill:
            drill_band(canvas, drill, k.page, k.mm)
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor("#666666")
        canvas.drawString(18 * mm, 10 * mm,
                          f"{name}: fleet health report, generated {_when(now, UTC)} UTC")
        canvas.drawRightString(k.page[0] - 18 * mm, 10 * mm, f"page {canvas.getPageNumber()}")
        canvas.restoreState()

    doc = SimpleDocTemplate(target, pagesize=k.page, leftMargin=18 * mm, rightMargin=18 * mm,
                            topMargin=16 * mm, bottomMargin=18 * mm, title="Fleet health report",
                            author="Thai Battery Fleet RUL", subject=name)
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return pages[0], sites.height, n


def _summary_facts(summary: dict, status: pl.DataFrame) -> list[tuple[str, str]]:
    """The stat block, in words; a count that needs forecasts says so when there are none."""
    n, n_scored, healthy = summary["in_service"], summary["scored"], summary["healthy_share"]
    counts = dict(status.group_by("status").len().iter_rows()) if n else {}
    frame = status.with_columns([pl.lit(None, dtype).alias(c) for c, dtype in (
        ("rul_status", pl.String), ("rul_p10_days", pl.Float64)) if c not in status.columns])
    unscored = frame.filter(pl.col("rul_p10_days").is_null()).group_by(
        pl.col("rul_status").fill_null("missing").replace("ok", "missing")).len()
    reasons = "; ".join(f"{c:,} {REASONS.get(r, r)}" for r, c in sorted(unscored.iter_rows()))
    of = f" (of {n_scored:,} with a forecast)" if 0 < n_scored < n else ""
    share = NO_PREDICTION if not n_scored or healthy is None else (
        f"{healthy:.0%} ({counts.get('healthy', 0):,} of {n:,}; warning "
        f"{counts.get('warning', 0):,}, critical {counts.get('critical', 0):,}, unknown "
        f"{counts.get('unknown', 0):,})")
    alerts = f"{summary['live_alerts']:,} open or acknowledged ({summary['critical_alerts']:,} " \
        "critical)"
    return [
        ("Batteries in service", f"{n:,}"),
        ("Live alerts", alerts),
        ("Share healthy", share),
        ("RUL P10 under 90 days", _num(summary["p10_below_90"] if n_scored else None) + of),
        ("RUL P10 under 180 days", _num(summary["p10_below_180"] if n_scored else None) + of),
        ("Usable RUL forecast", f"{n_scored:,} of {n:,}" if n_scored else NO_PREDICTION),
        ("No usable forecast", f"{n - n_scored:,}" + (f": {reasons}" if reasons else ""))]


def _site_table(sites: pl.DataFrame, k: _Kit) -> Any:
    P = k.P
    rows: list[list[Any]] = [[P(h, k.head) for h in (
        "Site", "Region", "Blocks", "Critical / warning", "Live alerts", "Room temp.",
        "Worst RUL P10")]]
    rows += [[P(f"<b>{escape(s['site_id'])}</b> {escape(s.get('name') or '')}", k.cell),
              s.get("region") or "",
              _num(s.get("batteries"), missing="0"),
              f"{s.get('critical') or 0} / {s.get('warning') or 0}",
              _num(s.get("live_alerts"), missing="0"),
              _num(s.get("room_temp_c"), "{:.1f} °C", "no reading"),
              _num(s.get("worst_p10_days"), "{:,.0f} days")] for s in sites.iter_rows(named=True)]
    return k.table(rows, [55, 22, 15, 24, 16, 18, 24], [("ALIGN", (2, 1), (-1, -1), "RIGHT")])


def _plan_tables(plan: Any, k: _Kit) -> list[Any]:
    """Cost per site for each horizon, and the strings where a whole string is suggested."""
    b, cur, P = plan.buckets_days, plan.currency, k.P
    by_p10 = plan.batteries.filter(pl.col("due_p10_within").is_not_null()).group_by(
        "site_id").len("by_p10")
    sites = plan.sites.join(by_p10, on="site_id", how="left").with_columns(
        pl.col("by_p10").fill_null(0))
    rows: list[list[Any]] = [
        ["Site", *[x for d in b for x in (f"Within {d} days", "")], "Whole", "By P10", "No"],
        ["", *[x for _ in b for x in ("blocks", f"cost ({cur})")], "strings", f"in {b[-1]} d",
         "forecast"]]
    total = sites.select(pl.exclude("site_id", "currency").sum()).row(0, named=True)
    for s in [*sites.iter_rows(named=True), {"site_id": "All sites", **total}]:
        rows.append([s["site_id"], *[x for d in b for x in (f"{s[f'blocks_due_{d}']:,}",
                                                             f"{s[f'cost_{d}']:,.0f}")],
                     f"{s['strings_whole']:,}", f"{s['by_p10']:,}", f"{s['unscored']:,}"])
    style = [*[("SPAN", (1 + 2 * i, 0), (2 + 2 * i, 0)) for i in range(len(b))],
             ("SPAN", (0, 0), (0, 1)), ("BACKGROUND", (0, 1), (-1, 1), NAVY),
             ("TEXTCOLOR", (0, 1), (-1, 1), "white"), ("FONTSIZE", (0, 1), (-1, 1), 7),
             ("ALIGN", (1, 0), (-1, 1), "CENTER"), ("ALIGN", (1, 2), (-1, -1), "RIGHT"),
             ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold"), ("BACKGROUND", (0, -1), (-1, -1),
                                                                  PALE)]
    out = [P(f"Blocks due by their P50 date and what replacing them costs, cumulative per "
             f"horizon ({escape(cur)}: the blocks plus one visit per string). <i>By P10</i>: "
             "blocks the pessimistic bound puts within the year.", k.body),
           k.table(rows, [28, *[12, 20] * len(b), 15, 17, 18], style, header_rows=2),
           P("Strings where whole-string replacement is suggested", k.h2)]
    whole = plan.strings.filter("whole_string")
    if whole.is_empty():
        out.append(P(f"None: no string has more than half its blocks due within {b[-1]} days.",
                     k.body))
    else:
        rows = [["Site", "String", "Model", "Blocks due", "First due", f"Cost ({cur})"]]
        rows += [[s["site_id"], P(escape(s["string_id"]), k.cell), s["battery_model"],
                  f"{s['blocks_due']} of {s['blocks']}", f"{s['earliest_date']}",
                  f"{s['cost']:,.0f}"] for s in whole.iter_rows(named=True)]
        out.append(k.table(rows, [24, 58, 24, 20, 22, 26], [("ALIGN", (3, 1), (-1, -1),
                                                             "RIGHT")]))
    others = plan.strings.filter(~pl.col("whole_string"))
    if others.height:
        out.append(P(f"{others.height:,} other string(s) need single blocks replaced "
                     f"({int(others['blocks_due'].sum()):,} blocks).", k.small))
    return out
