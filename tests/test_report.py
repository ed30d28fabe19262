"""The fleet-health PDF (reporting.pdf) and its monthly Dagster asset, on the champion
fixture's fleet with real predictions: the last hour of the history scored by the champion
into a private lake that links the fixture's tables (read only), as the soak links a history.

The PDF is checked as a reader would: it opens, its first pages render with content, page 1
states the fleet's numbers, and without any prediction it says so instead of printing zeros.
Renders of pages 1 and 2 are kept at /tmp/report_page1.png and /tmp/report_page2.png."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from champion import SEED, Champion, shared_champion
from training_fleet import DAYS, START

from assets.monitoring.fleet_report import (
    FLEET_HEALTH,
    fleet_health_report,
    monthly_fleet_report_schedule,
    report_path,
)
from assets.resources.simulation import Simulation
from assets.resources.storage import LakeStorage
from core.layout import Layout
from core.settings import Settings
from models.daily_store import update_store
from models.registry import load_model
from models.replacement import load_costs
from models.scoring import score_hours, write_scores
from pipelines.definitions import build_definitions
from reporting.fleet import FleetReader
from reporting.pdf import NO_PREDICTION, ReportSummary, fleet_report, report_bytes
from reporting.readings import history_end
from simulator.live.control import Control

NOW = dt.datetime(2025, 4, 1, 0, 30, tzinfo=dt.UTC)  # 07:30 on 1 April in Bangkok


@pytest.fixture(scope="module")
def champion(tmp_path_factory) -> Champion:
    return shared_champion(tmp_path_factory)


def linked_data(champion: Champion, root: Path) -> Settings:
    """A data folder of our own whose lake links the fixture's published tables."""
    lake = root / "data" / "lake"
    lake.mkdir(parents=True)
    for source in champion.lake.iterdir():
        if not source.name.startswith("_"):
            (lake / source.name).symlink_to(source, target_is_directory=source.is_dir())
    return Settings(data_dir=root / "data", fleet_config=champion.fleet_config, seed=SEED,
                    start=START, days=DAYS, step_s=3600, mlflow_uri=champion.tracking_uri)


@pytest.fixture(scope="module")
def scored(champion, tmp_path_factory) -> Settings:
    """The champion's scores of the history's last hour in lake/rul_predictions/."""
    settings = linked_data(champion, tmp_path_factory.mktemp("report"))
    lake = settings.data_dir / "lake"
    update_store(lake)
    batteries = pl.read_parquet(lake / "batteries" / "*.parquet")
    maintenance = pl.read_parquet(lake / "maintenance_events" / "*.parquet")
    model = load_model(tracking_uri=champion.tracking_uri)
    (scores,) = score_hours(lake, batteries, maintenance, model, [history_end(lake)])
    write_scores(lake, scores)
    return settings


@pytest.fixture(scope="module")
def report(scored, tmp_path_factory) -> tuple[ReportSummary, float]:
    out = tmp_path_factory.mktemp("pdf") / "fleet.pdf"
    began = time.perf_counter()
    summary = fleet_report(FleetReader(scored), out, now=NOW)
    return summary, time.perf_counter() - began


def page_text(path_or_bytes: Path | bytes, page: int) -> str:
    return pdfium.PdfDocument(path_or_bytes)[page].get_textpage().get_text_range()


def test_the_report_is_a_pdf_stating_the_fleet_numbers(report, scored):
    summary, seconds = report
    reader = FleetReader(scored)
    expected = reader.summary()
    data = summary.path.read_bytes()
    assert data.startswith(b"%PDF") and summary.bytes == len(data)
    assert [p.name for p in summary.path.parent.iterdir()] == ["fleet.pdf"]  # no temp file
    assert len(pdfium.PdfDocument(summary.path)) == summary.pages >= 2
    assert (summary.sites, summary.batteries) == (3, expected["in_service"]) == (3, 54)
    assert expected["scored"] > 0.9 * expected["in_service"]

    text = page_text(summary.path, 0)
    assert re.search(rf"Batteries in service\s+{expected['in_service']:,}\b", text)
    assert re.search(rf"RUL P10 under 90 days\s+{expected['p10_below_90']:,}\b", text)
    assert re.search(rf"RUL P10 under 180 days\s+{expected['p10_below_180']:,}\b", text)
    assert "Generated at 2025-04-01 00:30 UTC" in text
    newest = reader.newest()["ts"]  # the history's end, in Bangkok time and in UTC
    assert f"{newest + dt.timedelta(hours=7):%Y-%m-%d %H:%M} Asia/Bangkok " \
           f"({newest:%Y-%m-%d %H:%M} UTC)" in text
    for site in ("DC-CNX-01", "DC-KKN-01", "DC-BKK-01"):
        assert site in text
    assert NO_PREDICTION not in text
    assert "SIMULATION" not in text  # no scenario active: no drill marker
    plan_page = page_text(summary.path, 1)
    assert "Replacement plan" in plan_page and "cost (THB)" in plan_page
    assert "Strings where whole-string replacement is suggested" in plan_page
    assert seconds < 60


@pytest.mark.parametrize("page", [0, 1])
def test_pages_render_with_content_and_charts(report, page):
    summary, _ = report
    pdf = pdfium.PdfDocument(summary.path)
    image = pdf[page].render(scale=1.5).to_pil()
    image.save(f"/tmp/report_page{page + 1}.png")
    grey = np.asarray(image.convert("L"))
    assert (grey < 240).mean() > 0.05  # text, tables and charts, not a blank page
    assert len(np.unique(grey)) > 32  # anti-aliased text and coloured charts, not one fill
    charts = list(pdf[page].get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]))
    assert len(charts) == (1 if page == 0 else 2)  # RUL histogram; forecast and temperatures
    for chart in charts:
        pixels = np.asarray(chart.get_bitmap().to_pil().convert("L"))
        assert pixels.shape[1] > 1000 and len(np.unique(pixels)) > 16  # a drawn chart


def test_in_memory_report_and_a_costs_file_of_another_currency(scored, tmp_path):
    costs = Path(__file__).parents[1] / "models" / "replacement_costs.toml"
    eur = tmp_path / "costs.toml"
    eur.write_text(costs.read_text(encoding="utf-8").replace('code = "THB"', 'code = "EUR"'),
                   encoding="utf-8")
    data = report_bytes(FleetReader(scored), costs_path=eur, now=NOW)
    assert data.startswith(b"%PDF") and len(pdfium.PdfDocument(data)) >= 2
    assert "cost (EUR)" in page_text(data, 1) and "THB" not in page_text(data, 1)


def test_without_predictions_the_report_says_so_instead_of_zeros(champion, tmp_path):
    settings = linked_data(champion, tmp_path)
    summary = fleet_report(FleetReader(settings), tmp_path / "empty.pdf", now=NOW)
    assert summary.pages >= 2 and summary.batteries == 54
    text = page_text(summary.path, 0)
    assert re.search(r"Batteries in service\s+54\b", text)
    for line in ("Share healthy", "RUL P10 under 90 days", "RUL P10 under 180 days",
                 "Usable RUL forecast"):
        assert re.search(rf"{line}\s+{NO_PREDICTION}", text), line
    assert re.search(r"No usable forecast\s+54: 54 not scored yet", text)
    assert "RUL P50 distribution: no prediction yet" in text
    assert "Replacement plan and forecast: no prediction yet" in page_text(summary.path, 1)


def test_a_report_made_during_a_drill_is_marked_on_every_page(champion, tmp_path):
    """Scenario names and targets, like the fleet name, are data: shown as typed, never read
    as markup (a Paragraph would render or choke on `<b>`, `<font` and `&`)."""
    settings = linked_data(champion, tmp_path)
    Control(Layout(settings.data_dir).live_dir).apply(
        "<b>hvac_failure</b>", "DC-BKK-01 & <font color=red>", None, {}, by="eng")
    data = report_bytes(FleetReader(settings), now=NOW, fleet_name="Fleet <i>& Co</i> <font")
    drill = "SIMULATION: scenario active: <b>hvac_failure</b> on DC-BKK-01 & <font color=red>"
    pages = len(pdfium.PdfDocument(data))
    assert pages >= 2
    for page in range(pages):  # the band across the top of each page
        assert page_text(data, page).startswith(drill), page
    first = page_text(data, 0).replace("\r\n", " ")
    assert "Fleet <i>& Co</i> <font" in first
    assert re.search(r"Simulation\s+" + re.escape(drill) + r"\. Readings, alerts and", first)


def test_a_string_mostly_due_is_listed_for_whole_string_replacement(scored, champion,
                                                                    tmp_path):
    """One string's blocks given a 60-day P50 (the fixture's fleet has none due within a
    year by its P50): the plan's whole-string table lists it with its cost."""
    (source,) = FleetReader(scored).prediction_files()
    predictions = pl.read_parquet(source)
    string = predictions["string_id"][0]
    mine = linked_data(champion, tmp_path)
    target = mine.data_dir / "lake" / source.relative_to(scored.data_dir / "lake")
    target.parent.mkdir(parents=True)
    due = pl.col("string_id") == string
    predictions.with_columns(
        rul_p10_days=pl.when(due).then(20.0).otherwise("rul_p10_days"),
        rul_p50_days=pl.when(due).then(60.0).otherwise("rul_p50_days"),
        rul_p90_days=pl.when(due).then(300.0).otherwise("rul_p90_days"),
    ).write_parquet(target)
    costs = load_costs()
    blocks = predictions.filter(due).join(FleetReader(mine).batteries(), on="battery_id")
    cost = sum(costs.models[m].unit_price + costs.models[m].labour_per_block
               for m in blocks["battery_model"]) + costs.per_string.fixed_cost

    summary = fleet_report(FleetReader(mine), tmp_path / "due.pdf", now=NOW)
    text = page_text(summary.path, 1)
    listed = text.split("Strings where whole-string replacement is suggested")[1]
    assert string in listed.replace("\r\n", "")
    assert f"{blocks.height} of {blocks.height}" in listed and f"{cost:,.0f}" in listed
    assert "None: no string" not in listed


def test_the_monthly_asset_writes_the_pdf_of_the_month(scored, champion):
    result = dg.materialize([fleet_health_report], resources={
        "storage": LakeStorage(base_dir=str(scored.data_dir)),
        "simulation": Simulation(fleet_config=str(champion.fleet_config), seed=SEED,
                                 start=START.isoformat(), days=DAYS)})
    assert result.success
    (event,) = result.asset_materializations_for_node("reports__fleet_health")
    assert event.asset_key == FLEET_HEALTH
    meta = {k: v.value for k, v in event.metadata.items()}
    path = Path(meta["path"])
    assert path.parent == scored.data_dir / "reports" / "fleet_health"
    assert re.fullmatch(r"fleet-health-\d{4}-\d{2}\.pdf", path.name)
    assert path.read_bytes().startswith(b"%PDF")
    assert meta["pages"] == len(pdfium.PdfDocument(path)) >= 2
    assert meta["size"] == path.stat().st_size
    assert (meta["batteries"], meta["sites"]) == (54, 3)


def test_the_month_is_bangkoks_and_the_schedule_runs_monthly(settings):
    # 06:00 on 1 April in Bangkok is still 31 March in UTC: the April report
    fired = dt.datetime(2025, 3, 31, 23, 0, tzinfo=dt.UTC)
    assert report_path(Path("r"), fired) == Path("r/fleet_health/fleet-health-2025-04.pdf")
    schedule = monthly_fleet_report_schedule
    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == (
        "0 6 1 * *", "Asia/Bangkok", "monthly_fleet_report")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    defs = build_definitions(settings)
    assert "monthly_fleet_report_schedule" in {s.name for s in defs.schedules}
    job = defs.resolve_job_def("monthly_fleet_report")
    assert job.asset_layer.selected_asset_keys == {FLEET_HEALTH}
    spec = {s.key: s for s in defs.resolve_all_asset_specs()}[FLEET_HEALTH]
    assert spec.group_name == "monitoring" and spec.description.startswith("Monthly fleet-health")
