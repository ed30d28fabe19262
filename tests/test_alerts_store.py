"""The engine and its store: durations across batches, hysteresis without flapping,
escalation, one live alert per entity and type (enforced by SQLite), entities absent from a
batch, operator transitions and their errors, the audit trail, and the Parquet snapshot."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import time

import duckdb
import polars as pl
import pytest
from test_alert_rules import (
    SITE,
    STRING,
    THRESHOLDS,
    at,
    baselines,
    battery,
    environment,
    patch,
    readings,
)

from alerting import store
from alerting.engine import evaluate_predictions, evaluate_telemetry
from core.layout import Layout

ALERT_COLUMNS = ["alert_id", "site_id", "string_id", "battery_id", "type", "severity",
                 "opened_at", "last_seen_at", "value", "threshold", "message", "status",
                 "acknowledged_by", "acknowledged_at", "note", "resolved_at"]


@pytest.fixture
def db(tmp_path):
    return Layout(tmp_path / "data").alerts_db


def run(db, frame, env=None):
    env = environment(minutes=24 * 60) if env is None else env
    return evaluate_telemetry(db, frame, env, baselines(readings()), THRESHOLDS)


def temps(values: list[float], start: float = 0, k: int = 1) -> pl.DataFrame:
    """Battery k's temperature minute by minute from `start`; the others stay healthy."""
    frame = readings(minutes=len(values), start=start, seed=int(start))
    for i, v in enumerate(values):
        frame = patch(frame, k, start=start + i, end=start + i + 1, temperature_c=v)
    return frame


def alerts(db, **filters) -> pl.DataFrame:
    return store.list_alerts(db, type="temperature", **filters)


def test_store_layout_schema_and_pragmas(db):
    evaluate_telemetry(db, readings(), environment(), baselines(readings()), THRESHOLDS)
    assert db.exists() and db.parent.name == "alerts"
    with contextlib.closing(store.connect(db)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == store.BUSY_TIMEOUT_MS
        columns = [r["name"] for r in conn.execute("PRAGMA table_info(alerts)")]
        audit = [r["name"] for r in conn.execute("PRAGMA table_info(alert_events)")]
    assert columns == ALERT_COLUMNS
    assert audit == ["alert_id", "ts", "actor", "action", "note", "from_status", "to_status"]


def test_a_duration_must_hold_continuously_and_survives_between_batches(db):
    assert run(db, temps([36.0] * 3)).opened == ()  # 3 of 5 minutes: pending
    result = run(db, temps([36.0] * 4, start=3))
    assert len(result.opened) == 1 and alerts(db)["opened_at"][0] == at(5)
    # a break restarts the count: 36 for 3 min, one reading at 25, then 36 again from minute 4
    other = db.with_name("other.sqlite")
    run(other, temps([36.0, 36.0, 36.0, 25.0] + [36.0] * 7))
    assert alerts(other)["opened_at"].to_list() == [at(9)]


def test_a_value_hovering_at_the_limit_does_not_flap(db):
    hover = [36.0] * 6 + [35.2, 34.5] * 30  # 34.5 is under 35 but not 1 degC under it
    result = run(db, temps(hover))
    assert len(result.opened) == 1 and result.resolved == ()
    run(db, temps([35.3, 34.6] * 10, start=len(hover)))
    cleared_at = len(hover) + 20 + 3
    run(db, temps([35.1, 34.2, 34.5, 33.9, 36.0], start=len(hover) + 20))
    history = alerts(db)
    assert history.height == 1 and history["status"][0] == "resolved"
    assert history["resolved_at"][0] == at(cleared_at)  # 33.9 = 1 degC below the limit
    assert history["last_seen_at"][0] == at(len(hover) + 20)  # 35.1: the last reading over
    events = store.alert_events(db, history["alert_id"][0])
    assert events["action"].to_list() == ["open", "resolve"]
    assert events["actor"].to_list() == ["engine", "engine"]


def test_escalation_updates_the_one_alert(db):
    first = run(db, temps([36.0] * 10))
    second = run(db, temps([38.0, 46.0, 47.5, 40.0], start=10))
    live = alerts(db)
    assert live.height == 1 and live["alert_id"][0] == first.opened[0]
    assert second.escalated == first.opened and second.updated == first.opened
    assert second.opened == ()
    assert live["severity"][0] == "critical" and live["threshold"][0] == 45.0
    assert live["value"][0] == pytest.approx(40.0)  # the latest reading over the limit
    assert live["last_seen_at"][0] == at(13)
    assert "critical" in live["message"][0] and "\n" not in live["message"][0]
    events = store.alert_events(db, first.opened[0])
    assert events["action"].to_list() == ["open", "escalate"]
    assert events["from_status"].to_list() == [None, "open"]


def test_an_alert_opened_and_escalated_in_one_batch(db):
    result = run(db, temps([36.0] * 6 + [46.0] * 2))
    assert len(result.opened) == 1 and result.escalated == result.opened
    assert alerts(db)["severity"].to_list() == ["critical"]


def test_a_repeat_refreshes_the_alert_and_a_replayed_batch_changes_nothing(db):
    batch = temps([36.0] * 10)
    run(db, batch)
    replay = run(db, batch)
    assert (replay.opened, replay.updated, replay.resolved) == ((), (), ())
    result = run(db, temps([37.0] * 5, start=10))
    live = alerts(db)
    assert result.updated == tuple(live["alert_id"]) and live.height == 1
    assert live["last_seen_at"][0] == at(14) and live["value"][0] == pytest.approx(37.0)


def test_the_database_allows_one_live_alert_per_entity_and_type(db):
    run(db, patch(readings(), 2, voltage_v=12.9))  # a string alert: battery_id is NULL
    row = ("DC-TST-01", STRING, None, "string_imbalance", "warning", 0, 0, 0.6, 0.5, "m", "open")
    insert = ("INSERT INTO alerts (site_id, string_id, battery_id, type, severity, opened_at, "
              "last_seen_at, value, threshold, message, status) VALUES (?,?,?,?,?,?,?,?,?,?,?)")
    with contextlib.closing(store.connect(db)) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            conn.execute(insert, row)
        conn.execute(insert, (*row[:-1], "resolved"))  # history may repeat
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            conn.execute(insert, (*row[:-1], "acknowledged"))
        other = (*row[:3], "float_voltage", *row[4:])
        conn.execute(insert, (*other[:2], battery(7), *other[3:]))  # another entity and type


def test_entities_absent_from_a_batch_are_left_alone(db):
    run(db, temps([36.0] * 10))
    before = alerts(db)
    others = readings(start=10, seed=3).filter(~pl.col("battery_id").str.ends_with("J01"))
    result = run(db, others)
    assert result.resolved == () and alerts(db).equals(before)


def test_a_silent_battery_keeps_its_missing_readings_alert(db):
    gap = readings(minutes=60).filter(~(pl.col("battery_id").str.ends_with("J01")
                                        & (pl.col("ts") >= at(20))))
    opened = run(db, gap).opened
    silent = readings(minutes=60, start=60, seed=1).filter(
        ~pl.col("battery_id").str.ends_with("J01"))
    assert run(db, silent).updated == opened  # silent while its neighbours report
    missing = store.list_alerts(db, type="missing_readings")
    assert missing["status"].to_list() == ["open"] and missing["value"][0] == 100.0
    assert missing["last_seen_at"][0] == at(120)
    assert run(db, readings(minutes=60, start=120, seed=2)).resolved == opened
    assert store.list_alerts(db, type="missing_readings")["resolved_at"][0] == at(180)


def test_operator_transitions_and_their_errors(db):
    alert_id = run(db, temps([36.0] * 10)).opened[0]
    before = time.time()
    row = store.acknowledge(db, alert_id, "somchai", "fan replaced")
    assert row["status"] == "acknowledged" and row["acknowledged_by"] == "somchai"
    assert abs(row["acknowledged_at"] / 1e6 - before) < 60  # wall clock, not reading time
    errors = [
        (store.IllegalTransition, lambda: store.acknowledge(db, alert_id, "ann")),
        (store.UnknownAlert, lambda: store.resolve(db, 999, "ann")),
        (store.AlertError, lambda: store.acknowledge(db, alert_id, "engine")),
    ]
    row = store.resolve(db, alert_id, "ann", "replaced the block")
    assert row["status"] == "resolved" and row["resolved_at"] == row["last_seen_at"]
    errors += [(store.IllegalTransition, lambda: store.resolve(db, alert_id, "ann")),
               (store.IllegalTransition, lambda: store.acknowledge(db, alert_id, "ann"))]
    for kind, call in errors:
        with pytest.raises(kind) as exc:
            call()
        assert str(exc.value) and "\n" not in str(exc.value)
    events = store.alert_events(db, alert_id)
    assert events.select("actor", "action", "from_status", "to_status").rows() == [
        ("engine", "open", None, "open"),
        ("somchai", "acknowledge", "open", "acknowledged"),
        ("ann", "resolve", "acknowledged", "resolved")]
    assert events["note"].to_list()[1:] == ["fan replaced", "replaced the block"]
    # the condition persists: the engine opens a new alert on the next reading over the limit
    reopened = run(db, temps([36.0], start=10)).opened
    assert len(reopened) == 1 and reopened[0] != alert_id
    assert alerts(db, status="open")["opened_at"].to_list() == [at(10)]


def test_an_acknowledged_alert_is_updated_and_resolved_by_the_engine(db):
    alert_id = run(db, temps([36.0] * 10)).opened[0]
    store.acknowledge(db, alert_id, "ann")
    assert run(db, temps([46.0], start=10)).escalated == (alert_id,)
    assert alerts(db)["status"].to_list() == ["acknowledged"]
    assert run(db, temps([30.0], start=11)).resolved == (alert_id,)
    events = store.alert_events(db, alert_id)
    assert events.select("actor", "action", "from_status", "to_status").rows()[-2:] == [
        ("engine", "escalate", "acknowledged", "acknowledged"),
        ("engine", "resolve", "acknowledged", "resolved")]


def test_prediction_alerts(db):
    def scored(day: int, p10: list[float | None], status: list[str]) -> pl.DataFrame:
        return pl.DataFrame({
            "battery_id": [battery(k) for k in range(1, len(p10) + 1)], "site_id": SITE,
            "string_id": STRING, "as_of": dt.datetime(2024, 6, day), "rul_p10_days": p10,
            "status": status})

    first = evaluate_predictions(db, scored(1, [150.0, 300.0], ["ok", "ok"]), THRESHOLDS)
    second = evaluate_predictions(db, scored(2, [80.0, None], ["ok", "stale_data"]), THRESHOLDS)
    assert len(first.opened) == 1 and second.escalated == first.opened
    rul = store.list_alerts(db, type="rul")
    assert rul["severity"].to_list() == ["critical"]
    assert rul["opened_at"][0] == dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    third = evaluate_predictions(db, scored(3, [190.0], ["ok"]), THRESHOLDS)
    assert third.resolved == ()  # 190 is back over 180 but inside the 14-day margin
    assert evaluate_predictions(db, scored(4, [200.0], ["ok"]), THRESHOLDS).resolved == first.opened


def test_export_snapshot_publishes_both_tables_for_duckdb(db, tmp_path):
    alert_id = run(db, temps([36.0] * 10)).opened[0]
    store.acknowledge(db, alert_id, "ann", "looking")
    lake = tmp_path / "data" / "lake"
    alerts_path, events_path = store.export_snapshot(db, lake)
    assert sorted(p.name for p in lake.iterdir()) == ["alert_events.parquet", "alerts.parquet"]
    snapshot = pl.read_parquet(alerts_path)
    assert snapshot.columns == ALERT_COLUMNS and snapshot.schema["opened_at"] == pl.Datetime(
        "us", "UTC")
    assert snapshot["status"].to_list() == ["acknowledged"]
    con = duckdb.connect()
    assert con.execute(f"SELECT count(*), max(actor) FROM '{events_path}'").fetchone() == (2, "engine")
    store.resolve(db, alert_id, "ann")
    store.export_snapshot(db, lake)  # replaced whole
    assert pl.read_parquet(alerts_path)["status"].to_list() == ["resolved"]
    assert pl.read_parquet(events_path).height == 3
