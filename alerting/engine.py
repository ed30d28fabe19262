"""The alert engine: rules -> durations and hysteresis -> the store, one transaction a call.

The ingest code calls `evaluate_telemetry` with each batch of live readings and the scoring
code `evaluate_predictions` with each set of predictions. The rules run before the write lock
is taken; the pending state and the live alerts are then read, the batch tracked and every
change written inside one short `BEGIN IMMEDIATE` transaction, so operators acknowledging at
the same moment are never lost or overwritten. Alerts of entities absent from a batch are left
as they are (no data is not a clearance), except missing readings: a battery with a live
missing-readings alert that stays silent while its site reports keeps it (see
`rules.missing_readings`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from alerting import notify, rules
from alerting.conditions import LEVELS, entity_key, message
from alerting.store import (
    ACKNOWLEDGED,
    ENGINE,
    OPEN,
    RESOLVED,
    connect,
    record_event,
    rows_frame,
    to_us,
    transaction,
)
from alerting.tracking import LIVE, STATE, Tracked, track
from simulator.thresholds import Thresholds, load_thresholds

SEVERITY = {lvl: name for name, lvl in LEVELS.items()}
_LIVE_SQL = f"status IN ('{OPEN}', '{ACKNOWLEDGED}')"


@dataclass(frozen=True)
class EngineResult:
    """Alert ids the call opened, updated (existing alerts seen again or escalated),
    escalated and resolved, and how many condition rows it judged."""

    opened: tuple[int, ...] = ()
    updated: tuple[int, ...] = ()
    escalated: tuple[int, ...] = ()
    resolved: tuple[int, ...] = ()
    conditions: int = 0

    @property
    def counts(self) -> dict[str, int]:
        return {"opened": len(self.opened), "updated": len(self.updated),
                "escalated": len(self.escalated), "resolved": len(self.resolved)}


def evaluate_telemetry(db_path: str | Path, telemetry: pl.DataFrame | pl.LazyFrame,
                       environment: pl.DataFrame | pl.LazyFrame,
                       baselines: pl.DataFrame | pl.LazyFrame,
                       thresholds: Thresholds | None = None) -> EngineResult:
    """Judge one batch of live readings (TELEMETRY columns; ENVIRONMENT columns for the
    rooms; baselines from `baselines_from_history`) and update the store."""
    thresholds = thresholds or load_thresholds()
    frames = [f.lazy().collect() for f in (telemetry, environment, baselines)]
    with contextlib.closing(connect(db_path)) as conn:
        roster = _silent_roster(conn)
        conditions = rules.telemetry_conditions(*frames, thresholds, roster=roster)
        return _apply(conn, conditions)


def evaluate_predictions(db_path: str | Path, predictions: pl.DataFrame | pl.LazyFrame,
                         thresholds: Thresholds | None = None) -> EngineResult:
    """Judge one set of predictions (battery_id, site_id, string_id, as_of, rul_p10_days,
    status) and update the store's RUL alerts."""
    conditions = rules.rul_risk(predictions.lazy().collect(), thresholds or load_thresholds())
    with contextlib.closing(connect(db_path)) as conn:
        return _apply(conn, conditions)


def _silent_roster(conn: sqlite3.Connection) -> pl.DataFrame:
    """Batteries with a live missing-readings alert: their silence still counts."""
    rows = conn.execute("SELECT site_id, string_id, battery_id FROM alerts WHERE "
                        f"type = 'missing_readings' AND {_LIVE_SQL}").fetchall()
    return pl.DataFrame([tuple(r) for r in rows], orient="row",
                        schema=dict.fromkeys(rules.ROSTER, pl.String))


def _apply(conn: sqlite3.Connection, conditions: pl.DataFrame) -> EngineResult:
    with transaction(conn):
        live_rows = conn.execute(
            "SELECT type, site_id, string_id, battery_id, alert_id, severity, status "
            f"FROM alerts WHERE {_LIVE_SQL}").fetchall()
        live = rows_frame(live_rows, {"type": pl.String, "site_id": pl.String,
                                  "string_id": pl.String, "battery_id": pl.String,
                                  "alert_id": pl.Int64, "severity": pl.String,
                                  "status": pl.String}).with_columns(entity_key())
        types = conditions["type"].unique().to_list()
        marks = ", ".join("?" * len(types))
        state_rows = conn.execute(f"SELECT {', '.join(STATE)} FROM alert_state "
                                  f"WHERE type IN ({marks})", types).fetchall() if types else []
        tracked = track(conditions, rows_frame(state_rows, STATE), live.select(list(LIVE)))
        result = _write(conn, tracked, dict(zip(live["alert_id"], live["status"], strict=True)))
        _save_state(conn, tracked.state)
    return dataclasses.replace(result, conditions=conditions.height)


def _us(ts: dt.datetime | None) -> int | None:
    """Reading time (a UTC datetime from Polars) as store microseconds."""
    return None if ts is None else to_us(ts)


def _write(conn: sqlite3.Connection, tracked: Tracked, status: dict[int, str]) -> EngineResult:
    """Each touched alert period in reading order: open, escalate, refresh, resolve."""
    opened, updated, escalated, resolved = [], [], [], []
    for p in tracked.periods.iter_rows(named=True):
        alert_id, kind = p["alert_id"], p["type"]
        if alert_id is None:
            severity = SEVERITY[p["opened_level"]]
            note = message(kind, p["opened_value"], p["opened_threshold"], severity)
            cur = conn.execute(
                "INSERT INTO alerts (site_id, string_id, battery_id, type, severity, opened_at, "
                "last_seen_at, value, threshold, message, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (p["site_id"], p["string_id"], p["battery_id"], kind, severity,
                 _us(p["opened_at"]), _us(p["opened_at"]), p["opened_value"],
                 p["opened_threshold"], note, OPEN))
            alert_id = cur.lastrowid
            status[alert_id] = OPEN
            record_event(conn, alert_id, ENGINE, "open", None, OPEN, note)
            opened.append(alert_id)
            if p["opened_level"] == LEVELS["critical"]:
                notify.enqueue(conn, alert_id)
        if p["escalated"]:
            conn.execute("UPDATE alerts SET severity = 'critical', threshold = ? "
                         "WHERE alert_id = ?", (p["critical_threshold"], alert_id))
            note = message(kind, p["critical_value"], p["critical_threshold"], "critical")
            record_event(conn, alert_id, ENGINE, "escalate", status[alert_id],
                         status[alert_id], note)
            escalated.append(alert_id)
            notify.enqueue(conn, alert_id)
        if p["last_seen_at"] is not None:
            conn.execute("UPDATE alerts SET last_seen_at = MAX(last_seen_at, ?), value = ? "
                         "WHERE alert_id = ?", (_us(p["last_seen_at"]), p["value"], alert_id))
        if p["period"] == 0 and (p["escalated"] or p["last_seen_at"] is not None):
            updated.append(alert_id)
        row = conn.execute("SELECT value, threshold, severity FROM alerts WHERE alert_id = ?",
                           (alert_id,)).fetchone()
        conn.execute("UPDATE alerts SET message = ? WHERE alert_id = ?",
                     (message(kind, row["value"], row["threshold"], row["severity"]), alert_id))
        if p["resolved_at"] is not None:
            conn.execute("UPDATE alerts SET status = ?, resolved_at = ? WHERE alert_id = ?",
                         (RESOLVED, _us(p["resolved_at"]), alert_id))
            value = p["resolved_value"]
            note = "cleared" + ("" if value is None else f" at {value:.4g}")
            record_event(conn, alert_id, ENGINE, "resolve", status[alert_id], RESOLVED, note)
            resolved.append(alert_id)
    return EngineResult(tuple(opened), tuple(updated), tuple(escalated), tuple(resolved))


def _save_state(conn: sqlite3.Connection, state: pl.DataFrame) -> None:
    times = ("last_ts", "warning_since", "critical_since")
    rows = state.with_columns(pl.col(times).dt.epoch("us")).rows()
    conn.executemany(
        f"INSERT INTO alert_state ({', '.join(STATE)}) VALUES ({', '.join('?' * len(STATE))}) "
        "ON CONFLICT (entity, type) DO UPDATE SET last_ts = excluded.last_ts, "
        "warning_since = excluded.warning_since, critical_since = excluded.critical_since",
        rows)
