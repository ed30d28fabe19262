"""Sessions in a real browser against `rul dashboard`: an open tab whose session ends elsewhere
(signed out in another tab, password reset by an admin) turns into a sign-in link within a
tick, and a one-time password shows nothing but the form to replace it, on every page, until it
is replaced with the current one given. Run alone with `pytest -m browser -k sessions`."""

from __future__ import annotations

import re

import pytest
from dashboard_data import PASSWORDS
from playwright.sync_api import expect
from test_dashboard_browser import Visit, base, browser, dash  # noqa: F401 (fixtures)

from core import sessions, users

pytestmark = pytest.mark.browser
ENDS_WITHIN_MS = 10_000  # a tick is 2 s; the first waits for the page to connect


def test_an_open_tab_stops_when_its_session_ends_elsewhere(browser, base, dash):  # noqa: F811
    visit = Visit(browser, base)
    visit.login("eng")
    visit.page.wait_for_url(re.compile(r"/fleet"))
    visit.open("alerts")
    other = visit.context.new_page()  # the same browser: the same cookie, the same session
    other.goto(base + "/logout")
    ended = visit.page.locator("#session-ended")
    expect(ended).to_contain_text("Your session has ended", timeout=ENDS_WITHIN_MS)
    expect(visit.page.locator(".alerts-table")).to_have_count(0)
    assert ended.locator("a").get_attribute("href") == "/login"

    visit.login("eng")  # signed in again, then an admin resets the password
    visit.open("fleet")
    users.set_password(dash.layout.users_db, "eng", "granite moth lucky fern", by="admin",
                       must_change=True)
    try:
        expect(visit.page.locator("#session-ended")).to_be_visible(timeout=ENDS_WITHIN_MS)
    finally:
        users.set_password(dash.layout.users_db, "eng", PASSWORDS["eng"], by="admin")
    visit.context.close()
    visit.check()


def test_a_one_time_password_opens_nothing_but_its_change(browser, base, dash):  # noqa: F811
    db, one_time = dash.layout.users_db, "plaid otter nimble sky"
    users.add_user(db, "newcomer", "engineer", one_time, by="admin", must_change=True)
    visit = Visit(browser, base)
    visit.login("newcomer", one_time)
    visit.page.wait_for_url(re.compile(r"/fleet"))
    for path in ("fleet", "alerts", "admin"):
        visit.open(path)
        expect(visit.page.locator("#must-change")).to_contain_text("set your own")
        expect(visit.page.locator(".current-password input")).to_be_visible()
        expect(visit.page.locator("#stat-in-service, .alerts-table, #admins-only")).to_have_count(0)
    page = visit.page
    page.locator(".current-password input").fill("not the one-time password")
    page.locator(".own-password input").fill("cobalt wren spare tulip")
    page.locator(".own-password-2 input").fill("cobalt wren spare tulip")
    page.locator(".own-password-button button").click()
    expect(page.locator(".own-password-message")).to_contain_text("current password is wrong")
    page.locator(".current-password input").fill(one_time)
    page.locator(".own-password-button button").click()
    expect(page.locator("#must-change-done")).to_contain_text("Your password is set")
    page.locator("#must-change-done a").click()
    expect(page.locator("#live-indicator")).to_be_visible()
    expect(page.locator(".user-form")).to_have_count(1)  # the admin page again, for an engineer
    expect(page.locator("#admins-only")).to_be_visible()
    assert not sessions.authenticate(db, "newcomer", one_time, "127.0.0.2").ok
    visit.context.close()
    visit.check()
