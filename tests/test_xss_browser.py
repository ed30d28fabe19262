"""Stored XSS, tried in a real browser as the issue's tester did: markup that one person typed
(an acknowledgement note on the alerts page, a name given to `rul alerts ack --by`, a
scenario's target and parameters and the control log written by the CLI, a name typed at the
sign-in form, a line of the user store's audit) is shown to an admin, who hovers every cell
showing it. Nothing may run (`window.__xss` stays undefined), no element may be inserted, and
the text must still be shown, as text. Run alone with `pytest -m browser`."""

from __future__ import annotations

import re
import sqlite3
import time

import panel as pn
import polars as pl
import pytest
from playwright.sync_api import expect
from test_dashboard_browser import Visit, base, browser, dash  # noqa: F401 (fixtures)

from alerting.store import acknowledge, alert_events, export_snapshot, list_alerts
from dashboards.format import notify
from simulator.live.control import Control, now_iso

pytestmark = pytest.mark.browser
TOOLTIP_WAIT_MS = 500  # Tabulator opens a tooltip 300 ms after the pointer stops on a cell
INSERTED = "img[onerror], [onload]"  # what any payload below would add (shadow roots included)


def payload(n: int) -> str:
    """Markup that sets `window.__xss = n` if it is ever parsed as HTML."""
    return f"<img src=x onerror=window.__xss={n}>"


def _hover_every_cell(page, rows) -> int:
    """Rest the pointer on each cell of `rows` long enough for a tooltip, and check while it is
    open (Tabulator removes it when the pointer leaves) that nothing ran or was inserted; the
    cell count."""
    cells = rows.locator(".tabulator-cell:visible")  # not Panel's hidden index column
    for i in range(cells.count()):
        cells.nth(i).hover()
        page.wait_for_timeout(TOOLTIP_WAIT_MS)
        assert page.evaluate("() => window.__xss") is None, "user text ran as script"
        assert page.locator(INSERTED).count() == 0, "user text was inserted as markup"
    return cells.count()


def _nothing_ran(visit: Visit) -> None:
    visit.page.mouse.move(0, 0)
    visit.page.wait_for_timeout(TOOLTIP_WAIT_MS)
    assert visit.page.evaluate("() => window.__xss") is None, "user text ran as script"
    assert visit.page.locator(INSERTED).count() == 0, "user text was inserted as markup"


def _row(page, table: str, field: str, key: object):
    """The row of `table` whose `field` cell reads exactly `key`."""
    return page.locator(f"{table} .tabulator-row").filter(has=page.locator(
        f".tabulator-cell[tabulator-field='{field}']", has_text=re.compile(rf"^{key}$")))


def test_an_engineers_note_stays_text_when_an_admin_hovers_it(browser, base, dash):  # noqa: F811
    db, battery = dash.layout.alerts_db, dash.runaway_battery
    alerts = list_alerts(db, status="open").filter(pl.col("battery_id") == battery)
    typed = alerts.filter(pl.col("type") == "thermal_runaway")["alert_id"][0]
    by_cli = alerts.filter(pl.col("alert_id") != typed)["alert_id"][0]

    engineer = Visit(browser, base, bypass_csp=True)
    engineer.login("eng")
    engineer.open(f"alerts?battery={battery}")
    _row(engineer.page, ".alerts-table", "alert_id", typed) \
        .locator(".tabulator-cell[tabulator-field='alert_id']").click()
    engineer.page.locator(".ack-note input").fill(payload(1))
    engineer.page.locator(".ack-button button").click()
    expect(_row(engineer.page, ".alerts-table", "alert_id", typed)).to_contain_text(
        "acknowledged")
    engineer.context.close()
    engineer.check()
    assert list_alerts(db).filter(pl.col("alert_id") == typed)["note"][0] == payload(1)
    acknowledge(db, int(by_cli), payload(2), payload(3))  # as `rul alerts ack --by` does,
    export_snapshot(db, dash.layout.lake_dir)  # publishing what the pages read

    admin = Visit(browser, base, bypass_csp=True)
    admin.login("admin")
    admin.open(f"alerts?battery={battery}")
    page = admin.page
    rows = page.locator(".alerts-table .tabulator-row", has_text="<img")
    expect(rows).to_have_count(2)
    note = _row(page, ".alerts-table", "alert_id", typed) \
        .locator(".tabulator-cell[tabulator-field='note']")
    expect(note).to_have_text(payload(1))
    other = _row(page, ".alerts-table", "alert_id", by_cli)
    expect(other.locator(".tabulator-cell[tabulator-field='acknowledged_by']")).to_have_text(
        payload(2))
    expect(other.locator(".tabulator-cell[tabulator-field='note']")).to_have_text(payload(3))
    assert _hover_every_cell(page, rows) >= 2 * 13
    page.locator(".alerts-table .tabulator-col[tabulator-field='note']").hover()
    note.hover()
    page.wait_for_timeout(TOOLTIP_WAIT_MS)
    _nothing_ran(admin)

    other.locator(".tabulator-cell[tabulator-field='alert_id']").click()  # its audit trail
    audit = page.locator(".audit-table .tabulator-row", has_text="<img")
    expect(audit).to_have_count(1)
    expect(audit.locator(".tabulator-cell[tabulator-field='actor']")).to_have_text(payload(2))
    _hover_every_cell(page, audit)
    _nothing_ran(admin)
    admin.context.close()
    admin.check()
    assert payload(1) in alert_events(db, typed)["note"].to_list()


def test_scenarios_and_the_control_log_stay_text_on_the_simulator_page(browser, base,  # noqa: F811
                                                                       dash):  # noqa: F811
    control = Control(dash.layout.live_dir)
    control.apply("hvac_failure", payload(10), 3600.0, {payload(11): 5.0}, by=payload(12))
    ended = control.apply("hvac_failure", "DC-BKK-01", None, {payload(13): 1.0}, by=payload(14))
    control.clear(ended["id"], by=payload(15))
    control.adjust(payload(16), {"temperature_c": 2.0}, False, by=payload(17))
    control.update(lambda s: s["log"].append(
        {"at": now_iso(), "by": payload(18), "action": payload(19), "detail": payload(20)}))
    admin = Visit(browser, base, bypass_csp=True)
    try:
        admin.login("admin")
        admin.open("simulator")
        page = admin.page
        expect(page.locator("#sim-banner")).to_contain_text(payload(10))
        expect(page.locator(".active-scenarios")).to_contain_text(f"{payload(11)}=5")
        expect(page.locator(".ended-scenarios")).to_contain_text(payload(15))
        expect(page.locator(".offsets-table")).to_contain_text(payload(16))
        log = page.locator(".control-log .tabulator-row", has_text="<img")
        expect(log.first.locator(".tabulator-cell[tabulator-field='detail']")).to_have_text(
            payload(20))
        for table in (".active-scenarios", ".ended-scenarios", ".offsets-table", ".control-log"):
            assert _hover_every_cell(page, page.locator(f"{table} .tabulator-row",
                                                        has_text="<img")) > 0, table
        page.locator("#sim-banner").hover()
        _nothing_ran(admin)
    finally:
        admin.context.close()
        control.clear(by="test")
        control.adjust(payload(16), {}, True, by="test")
    admin.check()


def test_a_name_typed_at_sign_in_and_an_audit_detail_stay_text_on_the_admin_page(
        browser, base, dash):  # noqa: F811
    stranger = Visit(browser, base, bypass_csp=True)
    stranger.login(payload(30), "not-a-password-at-all")  # anyone who can reach /login
    expect(stranger.page.locator("#login-message")).to_be_visible()
    stranger.context.close()
    with sqlite3.connect(dash.layout.users_db) as conn:  # free text as the store keeps it
        conn.execute("INSERT INTO audit (ts, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                     (time.time_ns() // 1000, payload(31), "user.role", payload(32), payload(33)))
    conn.close()

    admin = Visit(browser, base, bypass_csp=True)
    admin.login("admin")
    admin.open("admin")
    page = admin.page
    rows = page.locator(".user-audit-table .tabulator-row", has_text="<img")
    written = rows.filter(has_text=payload(33))
    expect(written.locator(".tabulator-cell[tabulator-field='detail']")).to_have_text(payload(33))
    expect(written.locator(".tabulator-cell[tabulator-field='actor']")).to_have_text(payload(31))
    assert _hover_every_cell(page, rows) >= 5
    _nothing_ran(admin)
    admin.context.close()
    admin.check()


def test_a_toast_shows_user_text_as_text(monkeypatch):
    """Panel's toasts (Notyf) set their message as HTML: what a page passes must be escaped."""
    sent: list[tuple[str, int]] = []

    class Toasts:
        def error(self, text: str, duration: int) -> None:
            sent.append((text, duration))

    monkeypatch.setattr(type(pn.state), "_notification", Toasts())
    notify("error", f"alert 7 is already acknowledged by {payload(40)}", 8000)
    shown = "alert 7 is already acknowledged by &lt;img src=x onerror=window.__xss=40&gt;"
    assert sent == [(shown, 8000)]
