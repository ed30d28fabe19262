"""The dashboards' server side without a browser: the read-only reporting layer on a real data
folder (lake, scores, alert store, simulator feed), the role checks of every action called
directly (a viewer is refused by the server, not only by a hidden button), sessions that
expire, the per-server cache, exports in UTC, and `rul dashboard`'s one-line errors."""

from __future__ import annotations

import datetime as dt
import io
import sqlite3
import threading
import time

import openpyxl
import polars as pl
import pytest
from dashboard_data import clone, shared_dashboard
from tornado.web import create_signed_value

from alerting.store import alert_events, list_alerts
from core import sessions, users
from dashboards import actions
from dashboards.actions import Actor
from dashboards.auth import COOKIE, SESSION_HOURS, session_token
from dashboards.cache import TTLCache
from dashboards.drivers import in_words
from dashboards.exports import csv_bytes, excel_bytes
from pipelines.cli import main
from reporting import planning
from reporting.fleet import FleetReader
from simulator.live.control import Control


@pytest.fixture(scope="module")
def dash(tmp_path_factory):
    return shared_dashboard(tmp_path_factory)


@pytest.fixture
def private(dash, tmp_path):
    return clone(dash, tmp_path)


def test_battery_status_joins_readings_forecasts_and_alerts(dash):
    reader = FleetReader(dash.settings)
    status = reader.battery_status()
    predictions = reader.latest_predictions()
    assert status.height == 96 == predictions.height
    assert status["voltage_v"].null_count() == 0  # every block has a reading
    row = status.filter(pl.col("battery_id") == dash.runaway_battery).row(0, named=True)
    assert row["status"] == "critical"  # its runaway alert is critical whatever its RUL
    live = reader.alerts(live_only=True)
    worst = live.filter(pl.col("battery_id").is_not_null() & (pl.col("severity") == "critical"))
    assert set(worst["battery_id"]) <= set(status.filter(pl.col("status") == "critical")
                                           ["battery_id"])
    merged = status.join(predictions.select("battery_id", p10="rul_p10_days"), on="battery_id")
    assert (merged["rul_p10_days"] == merged["p10"]).all()


def test_summary_counts_match_the_scores_and_the_store(dash):
    reader = FleetReader(dash.settings)
    summary = reader.summary()
    p10 = reader.latest_predictions()["rul_p10_days"]
    live = list_alerts(dash.layout.alerts_db).filter(pl.col("status") != "resolved")
    assert summary["in_service"] == 96
    assert summary["p10_below_90"] == int((p10 < 90).sum())
    assert summary["p10_below_180"] == int((p10 < 180).sum())
    assert summary["live_alerts"] == live.height
    assert summary["critical_alerts"] == live.filter(pl.col("severity") == "critical").height


def test_a_battery_without_a_forecast_is_unknown_not_healthy(private):
    for path in (private.layout.lake_dir / "rul_predictions").rglob("*.parquet"):
        path.unlink()
    status = FleetReader(private.settings).battery_status()
    no_alert = status.filter(pl.col("live_alerts") == 0)
    assert no_alert.height and set(no_alert["status"]) == {"unknown"}
    assert FleetReader(private.settings).summary()["p10_below_90"] == 0


def test_the_newest_tick_reaches_the_reader_before_the_lake(private):
    from simulator.live.runner import publish_feed

    reader = FleetReader(private.settings)
    before = reader.newest()["ts"]
    tick = reader.latest_readings().head(1).with_columns(
        ts=pl.lit(before + dt.timedelta(minutes=5)), voltage_v=pl.lit(12.345, pl.Float32))
    publish_feed({"telemetry": tick.select(pl.exclude("date"))}, private.layout.live_dir)
    assert reader.newest()["ts"] == before + dt.timedelta(minutes=5)
    battery = tick["battery_id"][0]
    latest = reader.latest_readings().filter(pl.col("battery_id") == battery)
    assert latest["voltage_v"][0] == pytest.approx(12.345)


def test_reading_never_creates_or_locks_the_alert_store(private):
    db = private.layout.alerts_db
    conn = sqlite3.connect(db)  # a writer mid-transaction, as the engine would be
    conn.execute("BEGIN IMMEDIATE")
    try:
        assert FleetReader(private.settings).alerts().height > 0
    finally:
        conn.rollback()
        conn.close()
    db.unlink()
    for extra in ("-wal", "-shm"):
        db.with_name(db.name + extra).unlink(missing_ok=True)
    assert FleetReader(private.settings).alerts().is_empty()
    assert not db.exists()


def signed_in(db, name: str) -> Actor:
    """A user as a page holds them: the name bound to a live server-side session."""
    return Actor(name, sessions.start(db, name, "127.0.0.1"))


def test_a_viewer_is_refused_every_action_by_the_server(private):
    db, s = private.layout.users_db, private.settings
    vic = signed_in(db, "vic")
    alert = list_alerts(private.layout.alerts_db, status="open")["alert_id"][0]
    refused = [
        lambda: actions.acknowledge_alert(s, db, vic, alert, "seen"),
        lambda: actions.resolve_alert(s, db, vic, alert, None),
        lambda: actions.apply_scenario(s, db, vic, "hvac_failure", "DC-BKK-01", None, {}),
        lambda: actions.clear_scenarios(s, db, vic),
        lambda: actions.adjust(s, db, vic, "DC-BKK-01", {"temperature": 2.0}, False),
        lambda: actions.stop_simulator(s, db, vic),
        lambda: actions.add_user(db, vic, "mallory", "admin", "long-enough-pw"),
        lambda: actions.set_role(db, vic, "vic", "admin"),
        lambda: actions.set_password(db, vic, "eng", "another-password"),
    ]
    for action in refused:
        with pytest.raises(users.PermissionDenied, match=r"\(viewer\) may not"):
            action()
    assert list_alerts(private.layout.alerts_db).filter(pl.col("alert_id") == alert)[
        "status"][0] == "open"
    assert users.get_role(db, "vic") == "viewer" and users.get_role(db, "mallory") is None
    assert Control(private.layout.live_dir).read()["scenarios"] == []


def test_an_engineer_acts_and_the_audit_names_them(private):
    db, s = private.layout.users_db, private.settings
    eng = signed_in(db, "eng")
    alert = list_alerts(private.layout.alerts_db, status="open")["alert_id"][0]
    row = actions.acknowledge_alert(s, db, eng, alert, "  replacing tomorrow ")
    assert row["status"] == "acknowledged" and row["acknowledged_by"] == "eng"
    actions.resolve_alert(s, db, eng, alert, None)
    trail = alert_events(private.layout.alerts_db, alert)
    assert trail.filter(pl.col("actor") == "eng")["action"].to_list() == ["acknowledge", "resolve"]
    snapshot = pl.read_parquet(private.layout.lake_dir / "alerts.parquet")
    assert snapshot.filter(pl.col("alert_id") == alert)["status"][0] == "resolved"
    with pytest.raises(actions.ActionError, match="already resolved"):
        actions.resolve_alert(s, db, eng, alert, None)
    scenario = actions.apply_scenario(s, db, eng, "hvac_failure", "DC-BKK-01", 3600.0, {})
    log = Control(private.layout.live_dir).read()["log"]
    assert scenario["applied_by"] == "dashboard:eng" and log[-1]["by"] == "dashboard:eng"
    with pytest.raises(actions.ActionError, match="DC-XXX-99"):
        actions.apply_scenario(s, db, eng, "hvac_failure", "DC-XXX-99", None, {})
    assert len(actions.clear_scenarios(s, db, eng)) == 1


def test_a_demoted_or_removed_user_loses_their_rights_at_once(private):
    db, s = private.layout.users_db, private.settings
    eng, vic = signed_in(db, "eng"), signed_in(db, "vic")
    users.set_role(db, "eng", "viewer", by="admin")
    alert = list_alerts(private.layout.alerts_db, status="open")["alert_id"][0]
    with pytest.raises(users.PermissionDenied, match="session has ended"):
        actions.acknowledge_alert(s, db, eng, alert, None)
    with pytest.raises(users.PermissionDenied, match=r"\(viewer\) may not"):
        actions.acknowledge_alert(s, db, signed_in(db, "eng"), alert, None)  # signed in again
    users.remove_user(db, "vic", by="admin")
    with pytest.raises(users.PermissionDenied, match="session has ended"):
        actions.change_own_password(db, vic, "mossy piano under glass", "a-new-password")


def test_sessions_expire_and_forged_cookies_are_refused():
    secret = "s" * 64
    fresh = create_signed_value(secret, COOKIE, "token")
    assert session_token(fresh, secret) == "token"
    assert session_token(fresh, "another-secret" * 4) is None
    old = create_signed_value(secret, COOKIE, "token",
                              clock=lambda: time.time() - (SESSION_HOURS + 1) * 3600)
    assert session_token(old, secret) is None
    assert session_token(b"token", secret) is None


def test_the_cache_runs_a_query_once_for_many_sessions():
    cache, calls = TTLCache(), []

    def slow_query():
        calls.append(1)
        time.sleep(0.2)
        return len(calls)

    threads = [threading.Thread(target=cache.get, args=("q", 5.0, slow_query))
               for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and cache.get("q", 5.0, slow_query) == 1
    assert cache.get("other", 0.0, slow_query) == 2  # expired at once: computed again


def test_an_expired_value_is_served_while_one_thread_refreshes_it():
    cache, release = TTLCache(), threading.Event()
    assert cache.get("q", 0.0, lambda: "old") == "old"

    def slow_new():
        release.wait(5)
        return "new"

    began = time.monotonic()
    assert [cache.get("q", 60.0, slow_new) for _ in range(5)] == ["old"] * 5
    assert time.monotonic() - began < 1  # nobody waited for the refresh
    release.set()
    deadline = time.monotonic() + 5
    while cache.get("q", 60.0, slow_new) != "new" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cache.get("q", 60.0, slow_new) == "new" and cache.computed == 2


def test_exports_keep_utc_and_say_so():
    ts = dt.datetime(2025, 1, 1, 17, 30, tzinfo=dt.UTC)
    frame = pl.DataFrame({"battery_id": ["B1"], "opened_at": [ts], "_link": ["<a>"]})
    csv = pl.read_csv(csv_bytes(frame))
    assert csv.columns == ["battery_id", "opened_at_utc"]
    assert csv["opened_at_utc"][0].startswith("2025-01-01T17:30")
    sheet = openpyxl.load_workbook(io.BytesIO(excel_bytes(frame, "alerts").read())).active
    assert [c.value for c in sheet[1]] == ["battery_id", "opened_at_utc"]
    assert sheet["B2"].value == dt.datetime(2025, 1, 1, 17, 30)


def test_drivers_read_as_words():
    assert in_words("r_vs_baseline=1.18 (-120 d)") == (
        "resistance against its own baseline: 18 % above — shortens the forecast by 120 days")
    assert "not measured" in in_words("discharge_soh_pct=n/a (-269 d)")
    assert in_words(None) is None


def test_plan_and_what_if_run_on_the_platforms_own_data(dash):
    reader = FleetReader(dash.settings)
    plan = planning.replacement_plan(reader, 365)
    p50 = reader.latest_predictions()["rul_p50_days"]
    assert plan.sites["blocks_due_365"].sum() == int((p50 <= 365).sum())
    cooler = planning.what_if(reader, "DC-BKK-01", -3.0, False)
    hotter = planning.what_if(reader, "DC-BKK-01", +3.0, False)
    assert cooler.life_ratio > 1 > hotter.life_ratio
    assert (cooler.horizons["delta_replacements"] <= 0).all()
    assert cooler.assumptions


def test_rul_dashboard_refuses_a_folder_without_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RUL_DATA_DIR", str(tmp_path))
    assert main(["dashboard", "--port", "5999"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rul: error: no fleet data in") and "\n" not in err
