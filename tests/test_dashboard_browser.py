"""The dashboards in a real browser (Debian's Chromium driven by Playwright) against `rul
dashboard` serving a real data folder: sign-in, every page with real data and no console error,
a live reading arriving without a reload, viewer against engineer on an alert, filter, sort
and pagination, every export, a scenario started from the simulator page showing up live, and
nothing fetched from outside the server. Each page's screenshot is saved (RUL_SCREENSHOT_DIR,
or `screenshots/` in pytest's temporary folder). Run alone with `pytest -m browser`."""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from dashboard_data import PASSWORDS, clone, shared_dashboard
from local_servers import dashboard
from playwright.sync_api import expect, sync_playwright

from alerting.store import alert_events, list_alerts
from core.live import start_detached, stop
from reporting.fleet import FleetReader
from simulator.live.control import Control

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"  # Debian's package (.ci/run installs it); no browser download
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync"]
PAGES = ("fleet", "site?id=DC-BKK-01", "battery?id={runaway}", "alerts", "plan", "model",
         "simulator", "admin")
TIMEOUT_MS = 30_000  # the first model page of a server waits for MLflow's import (~8 s)
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def dash(tmp_path_factory):
    return clone(shared_dashboard(tmp_path_factory), tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def base(dash, tmp_path_factory):
    log = tmp_path_factory.getbasetemp() / "dashboard-server.log"
    for port in dashboard(dash.env, log):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run does)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("RUL_SCREENSHOT_DIR") or
                  tmp_path_factory.getbasetemp() / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Visit:
    """A browser context that records console errors and every request leaving the server."""

    def __init__(self, browser, base: str, bypass_csp: bool = False) -> None:
        self.base = base
        # bypass_csp: tests of escaping must see markup run if it gets through, not have the
        # content security policy (tests/test_http_security.py) stop it for them
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                           accept_downloads=True, bypass_csp=bypass_csp)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.context.on("request", self._request)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _request(self, request) -> None:
        if not request.url.startswith((self.base, "data:", "blob:", "ws://127.0.0.1")):
            self.outside.append(request.url)

    def login(self, user: str, password: str | None = None) -> None:
        self.page.goto(self.base + "/login")
        self.page.fill("#username", user)
        self.page.fill("#password", PASSWORDS[user] if password is None else password)
        self.page.click("#login-submit")

    def open(self, path: str) -> None:
        self.page.goto(f"{self.base}/{path}")
        expect(self.page.locator("#live-indicator")).to_be_visible()

    def check(self) -> None:
        assert not self.outside, f"requests outside the server: {self.outside}"
        assert not self.errors, f"browser console errors: {self.errors}"


@pytest.fixture
def visit(browser, base):
    opened = Visit(browser, base)
    yield opened
    opened.context.close()
    opened.check()


def test_login_with_good_and_bad_passwords(visit):
    visit.login("vic", "not-the-password")
    expect(visit.page.locator("#login-message")).to_contain_text("Wrong user name or password")
    assert "/login" in visit.page.url
    visit.login("vic")
    visit.page.wait_for_url(re.compile(r"/fleet"))
    expect(visit.page.locator("#who")).to_contain_text("vic")
    visit.page.goto(visit.base + "/logout")
    visit.page.goto(visit.base + "/fleet")
    visit.page.wait_for_url(re.compile(r"/login"))


def test_repeated_failures_lock_the_account_for_a_while(visit):
    for _ in range(5):
        visit.login("admin", "wrong-password")
    expect(visit.page.locator("#login-message")).to_contain_text("Too many failed sign-ins")
    visit.login("admin")  # even the right password waits out the lock
    expect(visit.page.locator("#login-message")).to_contain_text("Too many failed sign-ins")


def test_every_page_renders_real_data(visit, dash, shots):
    reader = FleetReader(dash.settings)
    summary = reader.summary()
    visit.login("eng")
    checks = {
        "fleet": ("#stat-in-service", f"{summary['in_service']:,}"),
        "site": (".battery-table", dash.runaway_battery),
        "battery": ("#rul-card", "Remaining useful life"),
        "alerts": (".alerts-table", "DC-BKK-01"),
        "plan": (".plan-sites", "DC-BKK-01"),
        "model": ("#champion-info", "Why"),
        "simulator": ("#sim-status", re.compile("STOPPED|RUNNING|has not run")),
        "admin": ("body", "Change my password"),
    }
    for path in PAGES:
        path = path.format(runaway=dash.runaway_battery)
        visit.open(path)
        selector, text = checks[path.split("?")[0]]
        expect(visit.page.locator(selector).first).to_contain_text(text)
        visit.page.wait_for_timeout(1500)  # charts finish drawing
        visit.page.screenshot(path=shots / f"{path.split('?')[0]}.png", full_page=True)


def test_filter_sort_and_pagination_on_the_site_page(visit, dash):
    status = FleetReader(dash.settings).battery_status("DC-BKK-01")
    visit.login("vic")
    visit.open("site?id=DC-BKK-01")
    rows = visit.page.locator(".battery-table .tabulator-row")
    expect(rows).to_have_count(50)  # 72 blocks, 50 a page
    visit.page.locator(".battery-table .tabulator-page[data-page='next']").click()
    expect(rows).to_have_count(status.height - 50)
    critical = status.filter(pl.col("status") == "critical").height
    visit.page.locator(".status-filter button", has_text="critical").click()
    expect(rows).to_have_count(min(critical, 50))
    visit.page.locator(".status-filter button", has_text="all").click()
    visit.page.locator(".battery-search input").fill(dash.runaway_battery)
    visit.page.locator(".battery-search input").press("Enter")
    expect(rows).to_have_count(1)
    visit.page.locator(".battery-search input").fill("")
    visit.page.locator(".battery-search input").press("Enter")
    header = visit.page.locator(".battery-table .tabulator-col[tabulator-field='voltage_v']")
    header.click()  # the table pages on the server: the sorted page arrives a moment later
    voltages = visit.page.locator(".battery-table .tabulator-cell[tabulator-field='voltage_v']")
    deadline = time.monotonic() + 15
    while True:
        values = [float(v) for v in voltages.all_inner_texts()[:10]]
        if values == sorted(values) or time.monotonic() > deadline:
            break
        visit.page.wait_for_timeout(200)
    assert values == sorted(values)
    assert values[0] == pytest.approx(status["voltage_v"].min(), abs=0.01)  # the whole table's


def test_a_viewer_cannot_acknowledge_an_engineer_can(browser, base, dash):
    alert = list_alerts(dash.layout.alerts_db, status="open",
                        type="thermal_runaway")["alert_id"][0]
    viewer = Visit(browser, base)
    viewer.login("vic")
    viewer.open(f"alerts?battery={dash.runaway_battery}")
    expect(viewer.page.locator(".ack-button button")).to_be_disabled()
    expect(viewer.page.locator(".resolve-button button")).to_be_disabled()
    viewer.context.close()
    viewer.check()

    engineer = Visit(browser, base)
    engineer.login("eng")
    engineer.open(f"alerts?battery={dash.runaway_battery}")
    row = engineer.page.locator(".alerts-table .tabulator-row", has_text="thermal_runaway").first
    row.locator(".tabulator-cell[tabulator-field='alert_id']").click()  # not on a link
    engineer.page.locator(".ack-note input").fill("isolating the string")
    engineer.page.locator(".ack-button button").click()
    expect(engineer.page.locator(".alerts-table .tabulator-row", has_text="thermal_runaway")
           .first).to_contain_text("acknowledged")
    engineer.context.close()
    engineer.check()
    row = list_alerts(dash.layout.alerts_db).filter(pl.col("alert_id") == alert).row(0, named=True)
    assert row["status"] == "acknowledged" and row["acknowledged_by"] == "eng"
    assert row["note"] == "isolating the string"
    assert "eng" in alert_events(dash.layout.alerts_db, alert)["actor"].to_list()


def _download(page, locator) -> bytes:
    with page.expect_download() as info:
        locator.click()
    return Path(info.value.path()).read_bytes()


def test_every_export_downloads_a_valid_file(visit, dash):
    visit.login("vic")
    visit.open("site?id=DC-BKK-01")
    csv = pl.read_csv(io.BytesIO(_download(visit.page, visit.page.locator(
        ".export-batteries-DC-BKK-01-csv button"))))
    assert csv.height == 72 and "battery_id" in csv.columns and "reading_ts_utc" in csv.columns
    book = openpyxl.load_workbook(io.BytesIO(_download(visit.page, visit.page.locator(
        ".export-batteries-DC-BKK-01-xlsx button"))))
    assert book.active.max_row == 73
    visit.open("plan")
    pdf = _download(visit.page, visit.page.locator(".report-pdf button"))
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    for name in ("plan-sites-365d", "plan-blocks-365d"):
        got = pl.read_csv(io.BytesIO(_download(visit.page, visit.page.locator(
            f".export-{name}-csv button"))))
        assert got.height > 0
    visit.open("alerts")
    buttons = visit.page.locator("[class*='export-'][class*='-csv'] button")
    assert buttons.count() >= 2
    for i in range(buttons.count()):
        assert pl.read_csv(io.BytesIO(_download(visit.page, buttons.nth(i)))).height > 0


def test_what_if_computes_on_the_plan_page(visit):
    visit.login("vic")
    visit.open("plan")
    visit.page.locator(".whatif-faults input").check()
    visit.page.locator(".whatif-run button").click()
    expect(visit.page.locator("#whatif-table")).to_contain_text("3 years")
    expect(visit.page.locator("#whatif-assumptions")).to_contain_text("Arrhenius")


def test_a_live_reading_and_a_scenario_arrive_without_a_reload(visit, dash, shots):
    layout = dash.layout
    visit.login("eng")
    visit.open(f"battery?id={dash.runaway_battery}")
    shown = visit.page.locator("#now-ts").inner_text()
    indicator = visit.page.locator("#live-indicator").get_attribute("data-ts")
    start_detached(layout, 1.0, 60.0)
    try:
        began = time.monotonic()
        expect(visit.page.locator("#now-ts")).not_to_have_text(shown, timeout=10_000)
        assert visit.page.locator("#live-indicator").get_attribute("data-ts") != indicator
        arrived = time.monotonic() - began
        visit.open("simulator")
        expect(visit.page.locator("body")).to_contain_text("running")
        visit.page.locator(".scenario-select select").select_option("hvac_failure")
        visit.page.locator(".target-select select").first.select_option("DC-BKK-01")
        visit.page.locator(".apply-scenario button").click()
        expect(visit.page.locator("#sim-banner")).to_contain_text("hvac_failure", timeout=10_000)
        visit.page.screenshot(path=shots / "simulator-scenario.png", full_page=True)
        visit.open("site?id=DC-BKK-01")
        expect(visit.page.locator("#sim-banner")).to_be_visible()
        expect(visit.page.locator("#environment")).to_contain_text("failed", timeout=15_000)
        scenarios = Control(layout.live_dir).read()["scenarios"]
        assert [s["applied_by"] for s in scenarios] == ["dashboard:eng"]
    finally:
        Control(layout.live_dir).clear(by="test")
        stop(layout)
    print(f"live reading shown {arrived:.1f} s after the simulator started")
