"""Webhook notifications of new critical alerts, through an outbox in the alert store.

The engine queues one outbox row per alert and event (`enqueue`, inside its own transaction, so
an alert and its notification are written together or not at all). `deliver_pending` POSTs
what is unsent as JSON, retrying with exponential backoff on connection errors, timeouts, 429
and 5xx; each row is claimed under a lease first, so two deliverers never send it together,
and carries an `Idempotency-Key` header that stays the same across retries, so a receiver can
drop the copy a crash between its 2xx and our bookkeeping would resend.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alerting.store import connect, iso_utc, now_us, transaction

CRITICAL_EVENT = "critical"  # an alert opened as, or escalated to, critical
LEASE_MARGIN_S = 30.0  # a claim outlives the worst-case retry loop by this much
TIMEOUT_S = 5.0  # a webhook that takes longer is treated as down and retried
ATTEMPTS = 4  # per call; a row left unsent is tried again by the next call
BACKOFF_S = 0.5  # waits 0.5, 1, 2 s between the attempts of one call


@dataclass(frozen=True)
class DeliveryResult:
    sent: tuple[int, ...] = ()  # alert ids delivered in this call
    failed: tuple[int, ...] = ()  # alert ids still unsent after this call's attempts


def enqueue(conn: sqlite3.Connection, alert_id: int, event: str = CRITICAL_EVENT) -> bool:
    """Queue a notification (inside the caller's transaction); False if it was queued
    already, so an alert is announced once per event whatever happens to it later."""
    row = conn.execute("SELECT * FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone()
    payload = dict(row)
    for key in ("opened_at", "last_seen_at", "acknowledged_at", "resolved_at"):
        payload[key] = iso_utc(payload[key])
    body = json.dumps({"event": event, "alert": payload}, sort_keys=True)
    cur = conn.execute("INSERT OR IGNORE INTO outbox (alert_id, event, created_at, payload) "
                       "VALUES (?, ?, ?, ?)", (alert_id, event, now_us(), body))
    return cur.rowcount == 1


def idempotency_key(alert_id: int, event: str) -> str:
    return f"rul-alert-{alert_id}-{event}"


def _post(url: str, body: bytes, key: str, timeout_s: float) -> tuple[bool, bool, str | None]:
    """(delivered, worth retrying, error) for one POST."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "Idempotency-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            if 200 <= response.status < 300:
                return True, False, None
            return False, True, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return False, exc.code >= 500 or exc.code in (408, 429), f"HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, True, f"{type(reason).__name__}: {reason}"


def _claim(conn: sqlite3.Connection, alert_id: int, event: str, lease_s: float) -> str | None:
    """Take one unsent row for this deliverer; None if sent or claimed meanwhile."""
    now = now_us()
    with transaction(conn):
        cur = conn.execute(
            "UPDATE outbox SET claimed_until = ? WHERE alert_id = ? AND event = ? AND "
            "sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < ?)",
            (now + int(lease_s * 1e6), alert_id, event, now))
        if cur.rowcount != 1:
            return None
        return conn.execute("SELECT payload FROM outbox WHERE alert_id = ? AND event = ?",
                            (alert_id, event)).fetchone()[0]


def _record(conn: sqlite3.Connection, alert_id: int, event: str, error: str | None,
            done: bool) -> None:
    with transaction(conn):
        conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = COALESCE(?, last_error), "
            "sent_at = CASE WHEN ? THEN ? END, claimed_until = CASE WHEN ? THEN NULL "
            "ELSE claimed_until END WHERE alert_id = ? AND event = ?",
            (error, error is None, now_us(), done, alert_id, event))


def deliver_pending(db_path: str | Path, url: str, *, timeout_s: float = TIMEOUT_S,
                    attempts: int = ATTEMPTS, backoff_s: float = BACKOFF_S,
                    sleep: Callable[[float], None] = time.sleep) -> DeliveryResult:
    """POST every unsent notification to `url`; each row is sent at most once for good."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"webhook URL {url!r}: expected an http:// or https:// address")
    if attempts < 1:
        raise ValueError(f"attempts: must be at least 1, got {attempts}")
    lease_s = attempts * timeout_s + backoff_s * 2 ** attempts + LEASE_MARGIN_S
    sent, failed = [], []
    with contextlib.closing(connect(db_path)) as conn:
        todo = conn.execute("SELECT alert_id, event FROM outbox WHERE sent_at IS NULL "
                            "ORDER BY created_at, alert_id").fetchall()
        for alert_id, event in todo:
            payload = _claim(conn, alert_id, event, lease_s)
            if payload is None:
                continue
            key = idempotency_key(alert_id, event)
            for attempt in range(attempts):
                ok, retry, error = _post(url, payload.encode(), key, timeout_s)
                last = ok or not retry or attempt == attempts - 1
                _record(conn, alert_id, event, error, done=last)
                if last:
                    break
                sleep(backoff_s * 2 ** attempt)
            (sent if ok else failed).append(alert_id)
    return DeliveryResult(tuple(sent), tuple(failed))


def outbox(db_path: str | Path) -> list[dict]:
    """The outbox rows, oldest first (for operators and tests)."""
    with contextlib.closing(connect(db_path)) as conn:
        rows = conn.execute("SELECT alert_id, event, created_at, attempts, last_error, sent_at "
                            "FROM outbox ORDER BY created_at, alert_id").fetchall()
    return [dict(r) for r in rows]
