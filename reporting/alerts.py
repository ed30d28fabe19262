"""Alerts as the store holds them now, read through a read-only SQLite connection: fresher than
the warehouse's Parquet snapshot, and in WAL mode a reader never blocks the engine or an
operator's acknowledgement."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from pathlib import Path

import polars as pl

from alerting.store import ALERTS, EVENTS, rows_frame, to_us

FILTERS = ("site_id", "severity", "type", "status", "battery_id", "string_id")


def _connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def read_alerts(db: Path, *, since: dt.datetime | None = None, until: dt.datetime | None = None,
                live_only: bool = False, limit: int | None = None,
                **filters: str | list[str] | None) -> pl.DataFrame:
    """Alerts matching every filter (a value or a list of values per column of `FILTERS`),
    opened in [since, until), newest first; an absent store holds no alert."""
    unknown = set(filters) - set(FILTERS)
    if unknown:
        raise ValueError(f"unknown alert filter(s): {', '.join(sorted(unknown))}")
    if not db.exists():
        return pl.DataFrame(schema=ALERTS)
    where, params = [], []
    for column, value in filters.items():
        values = [value] if isinstance(value, str) else list(value or [])
        if values:
            where.append(f"{column} IN ({', '.join('?' * len(values))})")
            params += values
    if live_only:
        where.append("status IN ('open', 'acknowledged')")
    for op, moment in ((">=", since), ("<", until)):
        if moment is not None:
            where.append(f"opened_at {op} ?")
            params.append(to_us(moment))
    sql = f"SELECT {', '.join(ALERTS)} FROM alerts"
    sql += f" WHERE {' AND '.join(where)}" if where else ""
    sql += " ORDER BY opened_at DESC, alert_id DESC"
    sql += f" LIMIT {int(limit)}" if limit else ""
    with contextlib.closing(_connect(db)) as conn:
        return rows_frame(conn.execute(sql, params).fetchall(), ALERTS)


def read_events(db: Path, alert_ids: list[int] | None = None, limit: int = 500) -> pl.DataFrame:
    """The audit trail (who did what, when), newest first."""
    if not db.exists():
        return pl.DataFrame(schema=EVENTS)
    sql = f"SELECT rowid, {', '.join(list(EVENTS)[1:])} FROM alert_events"
    params: list = []
    if alert_ids is not None:
        sql += f" WHERE alert_id IN ({', '.join('?' * len(alert_ids))})"
        params = list(alert_ids)
    with contextlib.closing(_connect(db)) as conn:
        rows = conn.execute(sql + f" ORDER BY rowid DESC LIMIT {int(limit)}", params).fetchall()
    return rows_frame(rows, EVENTS)


def counts(db: Path) -> dict[str, int]:
    """Live (open or acknowledged) alerts in all and critical, in one cheap query."""
    if not db.exists():
        return {"live": 0, "critical": 0}
    with contextlib.closing(_connect(db)) as conn:
        live, critical = conn.execute(
            "SELECT count(*), coalesce(sum(severity = 'critical'), 0) FROM alerts "
            "WHERE status IN ('open', 'acknowledged')").fetchone()
    return {"live": int(live), "critical": int(critical)}


def last_change(db: Path) -> int:
    """A number that changes whenever any alert changes (the newest audit row): a cheap way
    for a page to know whether its alert views are out of date."""
    if not db.exists():
        return 0
    with contextlib.closing(_connect(db)) as conn:
        return int(conn.execute("SELECT coalesce(max(rowid), 0) FROM alert_events").fetchone()[0])
