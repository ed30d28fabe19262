"""Dashboard speed in a real browser, against the data under RUL_DATA_DIR (build it with
`make pipeline`; start the simulator with `rul simulate start --detach` so pages are live):

1. first render: a signed-in browser opens a page and waits until its data is on screen
   (fleet: the stat cards; site: the first row of the battery table). Each page is opened
   `--repeat` times, each time in a fresh browser context, so no page state is reused; the
   server's cache is warm after the first one, as it is for every user but the first.
2. concurrent sessions: `--sessions` users (one browser context each, in one Chromium) sign
   in one every `--ramp` seconds onto fleet, site and battery pages and all stay on them
   together for `--hold` seconds while the simulator runs; every page must render, log no
   console error and see the live indicator move.

It serves `rul dashboard` on a free port with a temporary viewer account (removed at the end)
and prints its figures. Usage: `uv run python benchmarks/bench_dashboard.py [--sessions 20]`."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from core import users
from core.layout import Layout
from core.settings import Settings
from reporting.fleet import FleetReader

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]
USER = "bench-viewer"


def _serve(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "dashboard", "--port",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("rul dashboard did not start")


def _login(context, base: str, password: str):
    page = context.new_page()
    page.goto(base + "/login")
    page.fill("#username", USER)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_url("**/fleet")
    return page


def first_render(browser, base: str, password: str, path: str, ready: str,
                 repeat: int) -> tuple[list[float], list[float]]:
    """Seconds from navigation to the page's data on screen, the first time the page is
    opened after signing in and a second time (scripts and styles from the browser's cache,
    as when a user moves between pages)."""
    cold, warm = [], []
    for _ in range(repeat):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = _login(context, base, password)
        page.wait_for_load_state("networkidle")  # the sign-in's own page has settled
        for times in (cold, warm):
            began = time.perf_counter()
            page.goto(base + path)
            page.locator(ready).first.wait_for(state="visible", timeout=60_000)
            times.append(time.perf_counter() - began)
            page.wait_for_load_state("networkidle")  # its deferred charts drawn: one user
            page.wait_for_timeout(1000)  # at a time, as the target is stated
        context.close()
    return cold, warm


def screenshots(browser, base: str, password: str, folder: Path, site: str,
                battery: str) -> None:
    """Every page as a user sees it (the README's pictures), full length."""
    folder.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = _login(context, base, password)
    for name, path in (("fleet", "/fleet"), ("site", f"/site?id={site}"),
                       ("battery", f"/battery?id={battery}"), ("alerts", "/alerts"),
                       ("plan", "/plan"), ("model", "/model"), ("simulator", "/simulator"),
                       ("admin", "/admin")):
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(4000)  # deferred charts and the model card
        page.screenshot(path=folder / f"{name}.png", full_page=True)
    context.close()


async def _session(browser, base: str, password: str, path: str, start_s: float,
                   hold_s: float) -> dict:
    """One user: signs in at `start_s`, opens `path`, and stays on it `hold_s` seconds."""
    await asyncio.sleep(start_s)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(120_000)
    errors: list[str] = []
    page = await context.new_page()
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        await page.goto(base + "/login")
        await page.fill("#username", USER)
        await page.fill("#password", password)
        await page.click("#login-submit")
        await page.wait_for_url("**/fleet")
        began = time.perf_counter()
        await page.goto(base + path)
        indicator = page.locator("#live-indicator")
        await indicator.wait_for()
        rendered = time.perf_counter() - began
        first = await indicator.get_attribute("data-ts")
        await page.wait_for_timeout(hold_s * 1000)
        moved = await indicator.get_attribute("data-ts") != first
    except Exception as exc:  # noqa: BLE001 - a failed session is a result to report
        errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        rendered, moved = float("nan"), False
    await context.close()
    return {"path": path, "rendered_s": rendered, "errors": errors, "live_moved": moved}


async def sessions(base: str, password: str, paths: list[str], ramp_s: float,
                   hold_s: float) -> list[dict]:
    """All sessions in one Chromium (a context each, as separate users), started `ramp_s`
    apart, so every one of them is open at once for the last part of the hold."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        hold = [hold_s + ramp_s * (len(paths) - 1 - i) for i in range(len(paths))]
        results = await asyncio.gather(*(_session(browser, base, password, path, i * ramp_s,
                                                  hold[i]) for i, path in enumerate(paths)))
        await browser.close()
    return list(results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--hold", type=float, default=60.0,
                        help="seconds all sessions stay open together")
    parser.add_argument("--ramp", type=float, default=2.0, help="seconds between session starts")
    parser.add_argument("--screenshots", type=Path, metavar="DIR",
                        help="also save a screenshot of every page here")
    args = parser.parse_args()
    settings = Settings.from_env()
    layout = Layout(settings.data_dir)
    reader = FleetReader(settings)
    batteries = reader.batteries()
    site = batteries["site_id"][0]
    battery = batteries["battery_id"][0]
    password = secrets.token_urlsafe(16)
    if users.get_role(layout.users_db, USER):  # left by an interrupted run
        users.remove_user(layout.users_db, USER, by="bench_dashboard")
    users.add_user(layout.users_db, USER, "viewer", password, by="bench_dashboard")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = _serve(port)
    base = f"http://127.0.0.1:{port}"
    running = reader.simulator()["status"].get("running")
    print(f"{batteries.height:,} batteries in service; simulator running: {running}")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            for name, path, ready in (("fleet", "/fleet", "#stat-in-service"),
                                      ("site", f"/site?id={site}", ".battery-table .tabulator-row")):
                for kind, times in zip(("first visit", "second visit"), first_render(
                        browser, base, password, path, ready, args.repeat), strict=True):
                    print(f"first render {name:<5} ({kind}): median "
                          f"{statistics.median(times):.2f} s, max {max(times):.2f} s over "
                          f"{len(times)} loads")
            if args.screenshots:
                screenshots(browser, base, password, args.screenshots, site, battery)
            browser.close()
        paths = [p for _ in range(args.sessions)
                 for p in ("/fleet", f"/site?id={site}", f"/battery?id={battery}")][:args.sessions]
        began = time.perf_counter()
        results = asyncio.run(sessions(base, password, paths, args.ramp, args.hold))
        errors = [e for r in results for e in r["errors"]]
        moved = sum(r["live_moved"] for r in results)
        rendered = [r["rendered_s"] for r in results if r["rendered_s"] == r["rendered_s"]]
        print(f"{args.sessions} sessions, one started every {args.ramp:g} s, all open together "
              f"for {args.hold:.0f} s ({time.perf_counter() - began:.0f} s in all): "
              f"{len(errors)} errors, {len(rendered)}/{len(results)} rendered, live indicator "
              f"moved on {moved}/{len(results)}, render median "
              f"{statistics.median(rendered):.1f} s, max {max(rendered):.1f} s")
        for error in errors[:5]:
            print(f"  error: {error}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        users.remove_user(layout.users_db, USER, by="bench_dashboard")
    return 0 if not errors else 1


if __name__ == "__main__":
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    sys.exit(main())
