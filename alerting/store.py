"""The alert store: one SQLite file (`Layout(data_dir).alerts_db`) that the engine and the
operators write at the same time.

WAL mode lets readers run beside the one writer; every write is a short `BEGIN IMMEDIATE`
transaction (the write lock taken up front, so a writer waits its turn under `busy_timeout`
instead of failing half-way with "database is locked"). At most one open or acknowledged alert
per entity and type is enforced by a partial unique index; resolved alerts stay as history.
Every open, escalation, acknowledgement and resolution is written to `alert_events`.

Times are INTEGER microseconds since 1970-01-01 UTC (the telemetry's own resolution, exact
and sortable). opened_at, last_seen_at and resolved_at come from the readings (simulated time
when the readings are simulated); acknowledged_at and alert_events.ts are the wall clock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from simulator.atomic import atomic_path
from simulator.schema import TS

# Writers queue behind each other's short transactions (an engine batch commits in well under
# a second); 30 s is only reached if something is badly wrong, and then the error says so.
BUSY_TIMEOUT_MS = 30_000
SCHEMA_VERSION = 1
OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
STATUSES = (OPEN, ACKNOWLEDGED, RESOLVED)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ENGINE = "engine"  # the actor of every change the engine makes; no user may take the name

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    alert_id        INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, even after a delete
    site_id         TEXT NOT NULL,
    string_id       TEXT,
    battery_id      TEXT,
    type            TEXT NOT NULL,
    severity        TEXT NOT NULL CHECK (severity IN ('warning', 'critical')),
    opened_at       INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    value           REAL,
    threshold       REAL,
    message         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    acknowledged_by TEXT,
    acknowledged_at INTEGER,
    note            TEXT,
    resolved_at     INTEGER
);
-- NULLs never collide in a unique index (a string alert has no battery_id): hence COALESCE
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_live ON alerts
    (type, site_id, COALESCE(string_id, ''), COALESCE(battery_id, ''))
    WHERE status IN ('open', 'acknowledged');
CREATE INDEX IF NOT EXISTS alerts_by_opened ON alerts (opened_at);
CREATE TABLE IF NOT EXISTS alert_events (
    alert_id    INTEGER NOT NULL REFERENCES alerts (alert_id),
    ts          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('open', 'escalate', 'acknowledge', 'resolve')),
    note        TEXT,
    from_status TEXT,
    to_status   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_events_by_alert ON alert_events (alert_id);
-- pending state between batches: last reading time seen, start of a run still counting
CREATE TABLE IF NOT EXISTS alert_state (
    entity TEXT NOT NULL, type TEXT NOT NULL,
    site_id TEXT NOT NULL, string_id TEXT, battery_id TEXT,
    last_ts INTEGER NOT NULL, warning_since INTEGER, critical_since INTEGER,
    PRIMARY KEY (entity, type)
) WITHOUT ROWID;
-- notifications to deliver (alerting.notify): one row per alert and event, never twice
CREATE TABLE IF NOT EXISTS outbox (
    alert_id INTEGER NOT NULL REFERENCES alerts (alert_id),
    event TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    claimed_until INTEGER,
    sent_at INTEGER,
    PRIMARY KEY (alert_id, event)
);
"""
ALERTS = {
    "alert_id": pl.Int64, "site_id": pl.String, "string_id": pl.String,
    "battery_id": pl.String, "type": pl.String, "severity": pl.String, "opened_at": TS,
    "last_seen_at": TS, "value": pl.Float64, "threshold": pl.Float64, "message": pl.String,
    "status": pl.String, "acknowledged_by": pl.String, "acknowledged_at": TS,
    "note": pl.String, "resolved_at": TS,
}
EVENTS = {
    "event_id": pl.Int64, "alert_id": pl.Int64, "ts": TS, "actor": pl.String,
    "action": pl.String, "note": pl.String, "from_status": pl.String, "to_status": pl.String,
}


class AlertError(Exception):
    """A request the store refuses; the message is one line for the user."""


class UnknownAlert(AlertError):
    """No alert has that id."""


class IllegalTransition(AlertError):
    """The alert's status does not allow the change (e.g. resolving a resolved alert)."""


def connect(db_path: str | Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, busy timeout set,
    schema created on first use; parent folders are created."""
    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
        conn.execute("PRAGMA journal_mode = WAL")  # persistent: set once, with the schema
        with transaction(conn):
            for statement in filter(str.strip, SCHEMA.split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One short write transaction, the write lock taken at BEGIN."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def now_us() -> int:
    return time.time_ns() // 1000


def to_us(ts: dt.datetime) -> int:
    """UTC microseconds of a datetime (naive means UTC)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    delta = ts - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def iso_utc(us: int | None) -> str | None:
    """Store microseconds as ISO-8601 UTC text (for JSON and people)."""
    return None if us is None else (EPOCH + dt.timedelta(microseconds=us)).isoformat()


def record_event(conn: sqlite3.Connection, alert_id: int, actor: str, action: str,
                 from_status: str | None, to_status: str, note: str | None = None) -> None:
    conn.execute("INSERT INTO alert_events VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (alert_id, now_us(), actor, action, note, from_status, to_status))


def _alert(conn: sqlite3.Connection, alert_id: int) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone()
    if row is None:
        raise UnknownAlert(f"alert {alert_id}: no such alert")
    return row


def _actor(by: str) -> str:
    name = (by or "").strip()
    if not name or name == ENGINE or "\n" in name:
        raise AlertError(f"user {by!r}: give a person's name (not empty, not {ENGINE!r})")
    return name


def acknowledge(db_path: str | Path, alert_id: int, by: str,
                note: str | None = None) -> dict[str, Any]:
    """Mark an open alert as seen by `by`; it stays live until it clears or is resolved."""
    user = _actor(by)
    with contextlib.closing(connect(db_path)) as conn, transaction(conn):
        row = _alert(conn, alert_id)
        if row["status"] == RESOLVED:
            raise IllegalTransition(f"alert {alert_id} is resolved: it cannot be acknowledged")
        if row["status"] == ACKNOWLEDGED:
            raise IllegalTransition(f"alert {alert_id} is already acknowledged by "
                                    f"{row['acknowledged_by']}")
        conn.execute("UPDATE alerts SET status = ?, acknowledged_by = ?, acknowledged_at = ?, "
                     "note = COALESCE(?, note) WHERE alert_id = ?",
                     (ACKNOWLEDGED, user, now_us(), note, alert_id))
        record_event(conn, alert_id, user, "acknowledge", row["status"], ACKNOWLEDGED, note)
        return dict(_alert(conn, alert_id))


def resolve(db_path: str | Path, alert_id: int, by: str,
            note: str | None = None) -> dict[str, Any]:
    """Close a live alert by hand (resolved_at = last reading seen for it). If the condition
    persists, the engine opens a new alert on the next reading."""
    user = _actor(by)
    with contextlib.closing(connect(db_path)) as conn, transaction(conn):
        row = _alert(conn, alert_id)
        if row["status"] == RESOLVED:
            raise IllegalTransition(f"alert {alert_id} is already resolved")
        conn.execute("UPDATE alerts SET status = ?, resolved_at = last_seen_at, "
                     "note = COALESCE(?, note) WHERE alert_id = ?", (RESOLVED, note, alert_id))
        record_event(conn, alert_id, user, "resolve", row["status"], RESOLVED, note)
        return dict(_alert(conn, alert_id))


def rows_frame(rows: list[sqlite3.Row], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Query rows as a typed frame; INTEGER microsecond columns become UTC datetimes."""
    raw = {c: (pl.Int64 if t == TS else t) for c, t in schema.items()}
    frame = pl.DataFrame([tuple(r) for r in rows], schema=raw, orient="row")
    return frame.with_columns(pl.col(c).cast(TS) for c, t in schema.items() if t == TS)


def _choice(value: str | None, allowed: tuple[str, ...], name: str) -> None:
    if value is not None and value not in allowed:
        raise AlertError(f"{name}: expected one of {', '.join(allowed)}, got {value!r}")


def list_alerts(db_path: str | Path, *, site: str | None = None, severity: str | None = None,
                status: str | None = None, type: str | None = None,
                since: dt.datetime | None = None) -> pl.DataFrame:
    """Alerts (ALERTS columns) matching every filter given, oldest first; `since` keeps
    those opened at or after it."""
    from alerting.conditions import ALERT_TYPES, SEVERITIES

    _choice(severity, SEVERITIES, "severity")
    _choice(status, STATUSES, "status")
    _choice(type, tuple(ALERT_TYPES), "type")
    where, params = [], []
    for column, value in (("site_id", site), ("severity", severity), ("status", status),
                          ("type", type)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        where.append("opened_at >= ?")
        params.append(to_us(since))
    sql = f"SELECT {', '.join(ALERTS)} FROM alerts"
    sql += f" WHERE {' AND '.join(where)}" if where else ""
    with contextlib.closing(connect(db_path)) as conn:
        rows = conn.execute(sql + " ORDER BY opened_at, alert_id", params).fetchall()
    return rows_frame(rows, ALERTS)


def alert_events(db_path: str | Path, alert_id: int | None = None) -> pl.DataFrame:
    """The audit trail (EVENTS columns; event_id is the order written), of one alert or all."""
    sql = f"SELECT rowid, {', '.join(list(EVENTS)[1:])} FROM alert_events"
    params: tuple = ()
    if alert_id is not None:
        sql, params = sql + " WHERE alert_id = ?", (alert_id,)
    with contextlib.closing(connect(db_path)) as conn:
        rows = conn.execute(sql + " ORDER BY rowid", params).fetchall()
    return rows_frame(rows, EVENTS)


def export_snapshot(store_path: str | Path, lake_dir: str | Path) -> tuple[Path, Path]:
    """Publish `alerts.parquet` and `alert_events.parquet` in `lake_dir` (one consistent read,
    each file swapped in whole with os.replace), so DuckDB views never touch SQLite."""
    lake = Path(lake_dir)
    lake.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(connect(store_path)) as conn:
        conn.execute("BEGIN")  # one read snapshot for both tables
        alerts = conn.execute(f"SELECT {', '.join(ALERTS)} FROM alerts ORDER BY alert_id")
        alert_rows = alerts.fetchall()
        events = conn.execute(f"SELECT rowid, {', '.join(list(EVENTS)[1:])} FROM alert_events "
                              "ORDER BY rowid").fetchall()
        conn.execute("COMMIT")
    written = []
    for name, frame in (("alerts", rows_frame(alert_rows, ALERTS)),
                        ("alert_events", rows_frame(events, EVENTS))):
        final = lake / f"{name}.parquet"
        with atomic_path(final) as temp:
            frame.write_parquet(temp)
        written.append(final)
    return written[0], written[1]
