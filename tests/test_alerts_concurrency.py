"""Real processes writing the alert store at once: one engine evaluating batch after batch
(alerts opening, escalating, clearing and reopening) while two operators acknowledge and
resolve whatever is live. Afterwards nothing is lost or duplicated: every acknowledgement and
resolution an operator was told succeeded is in the audit trail and in the alert's status,
there is never more than one live alert per entity and type, and no process saw
"database is locked"."""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import random
import time
import traceback
from pathlib import Path

import polars as pl

from alerting import store

BATCHES = 30  # ten minutes of readings each; ~2-3 s of engine work in all
USERS = ("ann", "somchai")


def _batch(i: int) -> pl.DataFrame:
    """Batteries 1-4 stay hot (and turn critical halfway); 5-8 alternate hot and cool, so
    their alerts clear and reopen every other batch."""
    from test_alert_rules import patch, readings

    frame = readings(minutes=10, batteries=8, start=10 * i, seed=i)
    for k in range(1, 5):
        frame = patch(frame, k, temperature_c=46.0 if i > BATCHES // 2 else 36.0)
    if i % 2 == 0:
        for k in range(5, 9):
            frame = patch(frame, k, temperature_c=37.0)
    return frame


def _engine(db: str, out: str, go) -> None:
    from test_alert_rules import THRESHOLDS, baselines, environment, readings

    from alerting.engine import evaluate_telemetry

    report = {"batches": 0, "opened": 0, "resolved": 0, "error": None}
    try:
        go.wait(60)
        env, base = environment(minutes=10 * (BATCHES + 1)), baselines(readings(batteries=8))
        for i in range(1, BATCHES + 1):
            result = evaluate_telemetry(db, _batch(i), env, base, THRESHOLDS)
            report["batches"] += 1
            report["opened"] += len(result.opened)
            report["resolved"] += len(result.resolved)
    except Exception:  # noqa: BLE001 (reported to the parent, which fails the test with it)
        report["error"] = traceback.format_exc()
    Path(out).write_text(json.dumps(report))


def _operator(db: str, user: str, out: str, ready, done) -> None:
    rng = random.Random(user)
    report = {"acknowledged": [], "resolved": [], "refused": 0, "error": None}
    try:
        ready.set()
        while not done.is_set() or not report["acknowledged"]:
            live = store.list_alerts(db, status="open")["alert_id"].to_list()
            if not live:
                time.sleep(0.002)  # nothing to do until the engine's next batch
                continue
            alert_id = rng.choice(live)
            try:
                if rng.random() < 0.25:
                    store.resolve(db, alert_id, user, "checked on site")
                    report["resolved"].append(alert_id)
                else:
                    store.acknowledge(db, alert_id, user, "looking")
                    report["acknowledged"].append(alert_id)
            except store.IllegalTransition:  # the engine or the other operator got there first
                report["refused"] += 1
    except Exception:  # noqa: BLE001 (as in _engine)
        report["error"] = traceback.format_exc()
    Path(out).write_text(json.dumps(report))


def test_engine_and_operators_in_separate_processes(tmp_path):
    from test_alert_rules import THRESHOLDS, baselines, environment

    from alerting.engine import evaluate_telemetry

    db = str(tmp_path / "alerts" / "alerts.sqlite")
    evaluate_telemetry(db, _batch(0), environment(minutes=10), baselines(_batch(0)), THRESHOLDS)
    ctx = mp.get_context("spawn")
    ready = [ctx.Event() for _ in USERS]
    go, done = ctx.Event(), ctx.Event()
    outs = {name: str(tmp_path / f"{name}.json") for name in ("engine", *USERS)}
    engine = ctx.Process(target=_engine, args=(db, outs["engine"], go))
    operators = [ctx.Process(target=_operator, args=(db, u, outs[u], r, done))
                 for u, r in zip(USERS, ready, strict=True)]
    for p in (engine, *operators):
        p.start()
    for r in ready:
        assert r.wait(60)
    go.set()
    engine.join(60)
    done.set()
    for p in operators:
        p.join(60)
    assert [p.exitcode for p in (engine, *operators)] == [0, 0, 0]
    reports = {name: json.loads(Path(path).read_text()) for name, path in outs.items()}
    for name, report in reports.items():
        assert report["error"] is None, f"{name}: {report['error']}"
    assert reports["engine"]["batches"] == BATCHES
    assert reports["engine"]["opened"] > 0 and reports["engine"]["resolved"] > 0

    alerts = store.list_alerts(db)
    events = store.alert_events(db)
    status = dict(zip(alerts["alert_id"], alerts["status"], strict=True))
    acked_by = dict(zip(alerts["alert_id"], alerts["acknowledged_by"], strict=True))
    for user in USERS:
        mine = events.filter(pl.col("actor") == user)
        acks = reports[user]["acknowledged"]
        assert sorted(mine.filter(pl.col("action") == "acknowledge")["alert_id"]) == sorted(acks)
        assert sorted(mine.filter(pl.col("action") == "resolve")["alert_id"]) == sorted(
            reports[user]["resolved"])
        for alert_id in acks:
            assert acked_by[alert_id] == user and status[alert_id] in ("acknowledged",
                                                                       "resolved")
        for alert_id in reports[user]["resolved"]:
            assert status[alert_id] == "resolved"
    assert sum(len(reports[u]["acknowledged"]) for u in USERS) > 0

    opens = events.filter(pl.col("action") == "open")["alert_id"]
    assert sorted(opens) == sorted(alerts["alert_id"])  # one open event per alert
    resolves = events.filter(pl.col("action") == "resolve").group_by("alert_id").len()
    assert resolves["len"].max() == 1
    assert sorted(resolves["alert_id"]) == sorted(
        alerts.filter(pl.col("status") == "resolved")["alert_id"])
    with contextlib.closing(store.connect(db)) as conn:
        duplicates = conn.execute(
            "SELECT type, site_id, string_id, battery_id, count(*) FROM alerts "
            "WHERE status != 'resolved' GROUP BY 1, 2, 3, 4 HAVING count(*) > 1").fetchall()
    assert duplicates == []
