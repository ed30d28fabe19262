"""Webhook notifications: each new critical alert is delivered exactly once, through retries
on 5xx and timeouts with backoff, under a stable idempotency key; nothing is sent twice."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator

import pytest
from test_alert_rules import THRESHOLDS, baselines, environment, patch, readings

from alerting import notify, store
from alerting.engine import evaluate_telemetry
from core.settings import Settings

TIMEOUT_S = 0.3  # the webhook's slow answer below outlasts this
POLL_S = 0.02  # how often the test server checks for shutdown (its default 0.5 s is slow)


class Hook(http.server.ThreadingHTTPServer):
    """Answers from a script: 'fail' (503), 'slow' (sleeps past the timeout), then 'ok'."""

    def __init__(self, script: list[str]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script, self.log, self.lock = list(script), [], threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class Handler(http.server.BaseHTTPRequestHandler):
    server: Hook

    def do_POST(self) -> None:  # http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            step = self.server.script.pop(0) if self.server.script else "ok"
            self.server.log.append((self.headers["Idempotency-Key"], body, step))
        if step == "slow":
            time.sleep(TIMEOUT_S * 3)
        code = {"fail": 503, "slow": 200, "ok": 200, "reject": 400}[step]
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def hook(request) -> Iterator[Hook]:
    server = Hook(getattr(request, "param", []))
    thread = threading.Thread(target=server.serve_forever, args=(POLL_S,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def alerts_with_two_critical(db) -> tuple[int, ...]:
    frame = patch(patch(patch(readings(), 1, temperature_c=46.0), 2, temperature_c=47.0), 3,
                  temperature_c=36.0)  # battery 3: a warning, not announced
    return evaluate_telemetry(db, frame, environment(), baselines(frame), THRESHOLDS).opened


@pytest.mark.parametrize("hook", [["fail", "slow"]], indirect=True)
def test_each_critical_alert_is_delivered_once_through_retries(tmp_path, hook):
    db = tmp_path / "alerts.sqlite"
    opened = alerts_with_two_critical(db)
    critical = tuple(store.list_alerts(db, severity="critical")["alert_id"])
    assert len(opened) == 3 and len(critical) == 2
    waits = []
    result = notify.deliver_pending(db, hook.url, timeout_s=TIMEOUT_S, backoff_s=0.01,
                                    sleep=waits.append)
    assert sorted(result.sent) == sorted(critical) and result.failed == ()
    accepted = [(key, body) for key, body, step in hook.log if step == "ok"]
    assert sorted(body["alert"]["alert_id"] for _, body in accepted) == sorted(critical)
    first = critical[0]
    keys = [key for key, body, _ in hook.log if body["alert"]["alert_id"] == first]
    assert keys == [notify.idempotency_key(first, "critical")] * 3  # one key for every retry
    assert waits == [0.01, 0.02]  # exponential backoff between the three attempts
    rows = {r["alert_id"]: r for r in notify.outbox(db)}
    assert set(rows) == set(critical)
    assert rows[first]["attempts"] == 3 and rows[critical[1]]["attempts"] == 1
    assert rows[first]["last_error"].startswith("TimeoutError")
    assert all(r["sent_at"] is not None for r in rows.values())
    body = accepted[0][1]
    assert body["event"] == "critical" and body["alert"]["severity"] == "critical"
    assert body["alert"]["opened_at"].startswith("2024-06-01T00:00")

    seen = len(hook.log)
    assert notify.deliver_pending(db, hook.url, timeout_s=TIMEOUT_S) == notify.DeliveryResult()
    assert len(hook.log) == seen  # nothing sent twice


@pytest.mark.parametrize("hook", [["fail"] * 4], indirect=True)
def test_an_unreachable_webhook_keeps_the_row_for_the_next_call(tmp_path, hook):
    db = tmp_path / "alerts.sqlite"
    frame = patch(readings(), 1, temperature_c=46.0)
    (alert_id,) = evaluate_telemetry(db, frame, environment(), baselines(frame),
                                     THRESHOLDS).opened
    failed = notify.deliver_pending(db, hook.url, attempts=4, backoff_s=0, sleep=lambda s: None)
    assert failed.failed == (alert_id,) and failed.sent == ()
    (row,) = notify.outbox(db)
    assert row["attempts"] == 4 and row["sent_at"] is None and row["last_error"] == "HTTP 503"
    assert notify.deliver_pending(db, hook.url).sent == (alert_id,)  # the hook is back
    assert notify.outbox(db)[0]["attempts"] == 5


def test_escalation_is_announced_once(tmp_path, hook):
    db = tmp_path / "alerts.sqlite"
    base = baselines(readings())
    warm = patch(readings(), 1, temperature_c=36.0)
    evaluate_telemetry(db, warm, environment(minutes=180), base, THRESHOLDS)
    assert notify.outbox(db) == []  # warnings are not sent
    for start in (60, 120):  # critical twice: one escalation, one announcement
        hot = patch(readings(start=start, seed=start), 1, temperature_c=46.0)
        evaluate_telemetry(db, hot, environment(minutes=180), base, THRESHOLDS)
    assert len(notify.outbox(db)) == 1
    assert len(notify.deliver_pending(db, hook.url).sent) == 1 and len(hook.log) == 1


def test_a_rejected_notification_is_not_retried_in_the_same_call(tmp_path):
    db = tmp_path / "alerts.sqlite"
    alerts_with_two_critical(db)
    server = Hook(["reject"] * 2)
    thread = threading.Thread(target=server.serve_forever, args=(POLL_S,), daemon=True)
    thread.start()
    try:
        result = notify.deliver_pending(db, server.url, sleep=lambda s: None)
    finally:
        server.shutdown()
        server.server_close()
    assert len(result.failed) == 2 and len(server.log) == 2
    assert [r["last_error"] for r in notify.outbox(db)] == ["HTTP 400", "HTTP 400"]


def test_webhook_setting_and_bad_urls(tmp_path):
    assert Settings.from_env({"RUL_ALERT_WEBHOOK_URL": "https://hooks.example/x"}
                             ).alert_webhook_url == "https://hooks.example/x"
    assert Settings.from_env({}).alert_webhook_url is None
    with pytest.raises(ValueError, match="expected an http:// or https:// address"):
        notify.deliver_pending(tmp_path / "a.sqlite", "ftp://example")
