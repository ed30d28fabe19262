"""HTTP hardening of the dashboard server (issue 14), against `rul dashboard` on a real data
folder: security headers on every kind of response (our pages and sign-in, Panel's static
folders, Bokeh's own static and autoload routes, redirects and errors, signed in or not), no
Tornado version in `Server`, every page working in Chromium under the content security policy
with no console error (a CSP violation is one), the page's own inline scripts carrying a fresh
nonce while injected markup's handlers and scripts from elsewhere are refused, and the sign-in
page styled by the only files served without a session."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
import test_dashboard_browser as browser_suite
from dashboard_data import PASSWORDS
from local_servers import NoRedirect
from playwright.sync_api import expect
from test_dashboard_browser import PAGES, Visit

from dashboards.security import content_security_policy

# the browser suite's fixtures: its server (`rul dashboard` on a data folder) and Chromium
browser, base, dash = browser_suite.browser, browser_suite.base, browser_suite.dash

# Bokeh's static route and a page's autoload script, as a page embedded elsewhere would load it
BOKEH_JS = "/static/js/bokeh.min.js"
AUTOLOAD = "/fleet/autoload.js?bokeh-autoload-element=p1&bokeh-app-path=/fleet"
ANONYMOUS = ("/login", "/logout", "/", "/fleet", "/assets/app.css", "/public/app.css",
             "/public/favicon.svg", BOKEH_JS, "/favicon.ico", "/no-such-page")
SIGNED_IN = ("/fleet", "/alerts", "/assets/app.css", "/assets/thailand.json",
             "/reports/no-such-report.pdf", AUTOLOAD, "/logout")
KEYWORDS = {"'self'", "'none'", "'unsafe-inline'", "'unsafe-eval'", "data:", "blob:"}
NONCE = re.compile(r"'nonce-([A-Za-z0-9_-]{16,})'")


def _client() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(NoRedirect, urllib.request.HTTPCookieProcessor(
        http.cookiejar.CookieJar()))


def _get(client: urllib.request.OpenerDirector, url: str, data: bytes | None = None):
    """The response to a GET (or a POST with `data`), errors and redirects included."""
    try:
        return client.open(url, data=data, timeout=30)
    except urllib.error.HTTPError as error:  # 3xx, 4xx, 5xx: a response all the same
        return error


def _sign_in(base: str, user: str, password: str | None = None):
    """A client holding `user`'s session cookie, and the response to the sign-in form."""
    client = _client()
    page = _get(client, base + "/login").read().decode()
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
    form = {"username": user, "password": PASSWORDS[user] if password is None else password,
            "_xsrf": xsrf}
    answer = _get(client, base + "/login?next=/fleet", urllib.parse.urlencode(form).encode())
    return client, answer


def _policy(header: str) -> dict[str, list[str]]:
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: sources for name, *sources in directives}


def _check_headers(response, base: str) -> None:
    headers = response.headers
    where = f"{response.status} {response.url}"
    assert headers["X-Content-Type-Options"] == "nosniff", where
    assert headers["X-Frame-Options"] == "DENY", where
    assert headers["Referrer-Policy"] == "same-origin", where
    server = headers.get("Server", "")
    assert "tornado" not in server.lower() and not re.search(r"\d", server), where
    policy = _policy(headers["Content-Security-Policy"] or "")
    host = urllib.parse.urlsplit(base).netloc
    assert policy["default-src"] == ["'self'"], where
    assert policy["object-src"] == ["'none'"], where
    assert policy["base-uri"] == ["'self'"], where
    assert policy["form-action"] == ["'self'"], where
    assert policy["frame-ancestors"] == ["'none'"], where
    assert set(policy["img-src"]) == {"'self'", "data:", "blob:"}, where
    assert set(policy["connect-src"]) <= {"'self'", f"ws://{host}", f"wss://{host}"}, where
    assert {"'self'", f"ws://{host}"} <= set(policy["connect-src"]), where
    for directive in ("script-src", "style-src"):  # no host of elsewhere, no wildcard
        sources = {s for s in policy[directive] if not NONCE.fullmatch(s)}
        assert sources <= KEYWORDS, (where, policy[directive])
    # inline script only with this response's nonce: injected markup's scripts stay inert
    assert "'unsafe-inline'" not in policy["script-src"], where
    assert len([s for s in policy["script-src"] if NONCE.fullmatch(s)]) == 1, where


@pytest.mark.parametrize("path", ANONYMOUS)
def test_every_response_without_a_session_carries_the_security_headers(base, path):
    response = _get(_client(), base + path)
    _check_headers(response, base)


@pytest.mark.parametrize("path", SIGNED_IN)
def test_every_response_in_a_session_carries_the_security_headers(base, path):
    client, answer = _sign_in(base, "vic")
    assert answer.status == 302 and answer.headers["Location"] == "/fleet"
    _check_headers(answer, base)
    response = _get(client, base + path)
    assert response.status != 302 or path == "/logout", "the session did not hold"
    _check_headers(response, base)


def test_a_refused_sign_in_carries_the_security_headers(base):
    _, answer = _sign_in(base, "vic", "not-the-password")
    assert answer.status == 200 and "Wrong user name or password" in answer.read().decode()
    _check_headers(answer, base)


def test_a_host_header_cannot_write_into_the_policy():
    policy = content_security_policy("evil.example; script-src *", "n0nce")
    assert "script-src *" not in policy and "evil.example" not in policy
    assert "ws://127.0.0.1:5006" in content_security_policy("127.0.0.1:5006", "n0nce")


def test_a_page_s_own_scripts_carry_a_fresh_nonce(base):
    client, _ = _sign_in(base, "vic")
    nonces = []
    for _ in range(2):
        page = _get(client, base + "/fleet")
        nonce = NONCE.search(page.headers["Content-Security-Policy"]).group(1)
        tags = re.findall(r"<script\b[^>]*>", page.read().decode())
        assert tags and all(f'nonce="{nonce}"' in tag for tag in tags), tags
        nonces.append(nonce)
    assert nonces[0] != nonces[1]


def test_the_sign_in_page_assets_and_nothing_else_are_served_without_a_session(base):
    client = _client()
    css = _get(client, base + "/public/app.css")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    assert ".login-card" in css.read().decode()
    logo = _get(client, base + "/public/favicon.svg")
    assert logo.status == 200 and logo.headers["Content-Type"].startswith("image/svg+xml")
    behind = _get(client, base + "/assets/app.css")  # the same file stays behind sign-in there
    assert behind.status == 302 and behind.headers["Location"].startswith("/login")
    for path in ("/public/thailand.json", "/public/", "/public/app.css/",
                 "/public/..%2fstatic%2fthailand.json", "/public/%2e%2e/app.py",
                 "/public/../auth.py", "/public/app.css%00.json"):
        response = _get(client, base + path)
        assert response.status in (302, 403, 404), (path, response.status)
        assert b"login-card" not in response.read() or response.status == 302, path


def test_the_sign_in_page_is_styled(browser, base):
    visit = Visit(browser, base)
    assets: dict[str, int] = {}
    visit.page.on("response", lambda r: r.url.startswith(base + "/public/") and assets.update(
        {r.url.removeprefix(base): r.status}))
    visit.page.goto(base + "/login")
    card = visit.page.locator(".login-card")
    expect(card).to_have_css("border-radius", "10px")  # the browser's default is 0px
    expect(card).to_have_css("background-color", "rgb(255, 255, 255)")
    assert visit.page.locator(".login-brand img").evaluate("img => img.naturalWidth") > 0
    visit.context.close()
    assert assets == {"/public/app.css": 200, "/public/favicon.svg": 200}
    visit.check()


def test_every_page_works_under_the_policy(browser, base, dash):
    visit = Visit(browser, base)
    visit.login("eng")
    visit.page.wait_for_url(re.compile(r"/fleet"))
    for path in PAGES:
        response = visit.page.goto(f"{base}/{path.format(runaway=dash.runaway_battery)}")
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        expect(visit.page.locator("#live-indicator")).to_be_visible()  # over the websocket
        visit.page.wait_for_timeout(1500)  # charts and tables finish drawing
    visit.context.close()
    visit.check()


def test_the_policy_keeps_injected_markup_inert(browser, base, dash):
    """What issue 14's stored XSS did (markup with an `onerror=` handler reaching a page) and a
    script from elsewhere: both refused on a real page, whatever the escaping upstream."""
    visit = Visit(browser, base)
    visit.login("vic")
    visit.open("alerts")
    blocked = visit.page.evaluate("""() => new Promise(resolve => {
        const seen = [];
        document.addEventListener('securitypolicyviolation', e => {
            seen.push(e.effectiveDirective + ' ' + e.blockedURI);
            if (seen.length === 2) resolve(seen.sort());
        });
        setTimeout(() => resolve(seen.sort()), 5000);
        const div = document.createElement('div');
        div.innerHTML = '<img src="data:image/png;base64,AA" onerror="window.pwned = 1">';
        const script = document.createElement('script');
        script.src = 'https://attacker.example/steal.js';
        document.body.append(div, script);
    })""")
    pwned = visit.page.evaluate("window.pwned")
    visit.context.close()
    assert blocked == ["script-src-attr inline", "script-src-elem https://attacker.example/steal.js"]
    assert pwned is None
