"""`rul alerts list|ack|resolve` against the store under RUL_DATA_DIR: filters, JSON,
transitions republished to the lake, and every expected mistake as one `rul: error:` line
with exit status 2."""

from __future__ import annotations

import json
import os
import pwd

import polars as pl
import pytest
from test_alert_rules import THRESHOLDS, baselines, environment, patch, readings

from alerting.engine import evaluate_telemetry
from core.layout import Layout
from pipelines.cli import main

ME = pwd.getpwuid(os.getuid()).pw_name  # the account running the tests


@pytest.fixture
def layout(tmp_path, monkeypatch) -> Layout:
    monkeypatch.setenv("RUL_DATA_DIR", str(tmp_path / "data"))
    layout = Layout(tmp_path / "data")
    frame = patch(patch(readings(), 1, temperature_c=46.0), 2, temperature_c=36.0)
    frame = patch(frame, 3, start=30, voltage_v=13.9)  # float voltage warning from 00:45
    evaluate_telemetry(layout.alerts_db, frame, environment(), baselines(frame), THRESHOLDS)
    return layout


def rul(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def listed(capsys, *filters: str) -> list[dict]:
    code, out, _ = rul(capsys, "alerts", "list", "--json", *filters)
    assert code == 0
    return json.loads(out)


def test_list_filters_and_json(layout, capsys):
    everything = listed(capsys)
    assert [(a["type"], a["severity"]) for a in everything] == [
        ("temperature", "critical"), ("temperature", "warning"), ("float_voltage", "warning")]
    assert everything[0]["opened_at"] == "2024-06-01T00:00:00+00:00"
    assert [a["battery_id"][-3:] for a in listed(capsys, "--severity", "warning")] == [
        "J02", "J03"]
    assert len(listed(capsys, "--type", "float_voltage", "--status", "open")) == 1
    assert listed(capsys, "--site", "DC-NOWHERE-01") == []
    assert [a["type"] for a in listed(capsys, "--since", "2024-06-01T00:30Z")] == [
        "float_voltage"]
    assert [a["type"] for a in listed(capsys, "--since", "2024-06-01 07:30+07:00")] == [
        "float_voltage"]
    code, out, _ = rul(capsys, "alerts", "list")
    assert code == 0 and len(out.strip().splitlines()) == 4 and "J01" in out


def test_ack_and_resolve_are_published_to_the_lake(layout, capsys):
    first = listed(capsys)[0]["alert_id"]
    code, out, _ = rul(capsys, "alerts", "ack", str(first), "--by", "somchai", "--note", "on it")
    assert code == 0 and f"alert {first} acknowledged by somchai (os:{ME})" in out
    snapshot = pl.read_parquet(layout.lake_dir / "alerts.parquet")
    row = snapshot.filter(pl.col("alert_id") == first).row(0, named=True)
    assert (row["status"], row["acknowledged_by"], row["note"]) == (
        "acknowledged", f"somchai (os:{ME})", "on it")
    assert rul(capsys, "alerts", "resolve", str(first), "--by", "somchai")[0] == 0
    assert listed(capsys, "--status", "resolved")[0]["alert_id"] == first
    events = pl.read_parquet(layout.lake_dir / "alert_events.parquet")
    assert events.filter(pl.col("alert_id") == first)["action"].to_list() == [
        "open", "acknowledge", "resolve"]


def test_the_account_is_recorded_whatever_name_is_given(layout, capsys, monkeypatch):
    """--by is free text: the actor carries the real uid's account, not $USER, and the alert
    engine's reserved name is refused in any case."""
    monkeypatch.setenv("USER", "mallory")
    monkeypatch.setenv("LOGNAME", "mallory")
    first, second = (a["alert_id"] for a in listed(capsys)[:2])
    assert rul(capsys, "alerts", "ack", str(first), "--by", "admin")[0] == 0
    events = pl.read_parquet(layout.lake_dir / "alert_events.parquet")
    assert events.filter(pl.col("action") == "acknowledge")["actor"].to_list() == [
        f"admin (os:{ME})"]
    for name in ("engine", "Engine", " ENGINE ", "bob (os:root)"):
        code, out, err = rul(capsys, "alerts", "resolve", str(second), "--by", name)
        assert code == 2 and "give a person's name" in err and out == "", name
    assert listed(capsys, "--status", "open")[0]["alert_id"] == second


def test_errors_are_one_line_with_exit_status_2(layout, capsys):
    first = str(listed(capsys)[0]["alert_id"])
    rul(capsys, "alerts", "resolve", first, "--by", "ann")
    cases = [
        (["ack", "999", "--by", "ann"], "alert 999: no such alert"),
        (["resolve", first, "--by", "ann"], f"alert {first} is already resolved"),
        (["ack", first, "--by", "ann"], "is resolved: it cannot be acknowledged"),
        (["ack", "abc", "--by", "ann"], "ID: expected a whole number, got 'abc'"),
        (["ack", "2", "--by", " "], "give a person's name"),
        (["ack", "2"], "the following arguments are required: --by"),
        (["list", "--severity", "urgent"], "--severity: expected one of warning, critical"),
        (["list", "--status", "closed"], "--status: expected one of open, acknowledged"),
        (["list", "--type", "temp"], "--type: expected one of float_voltage"),
        (["list", "--since", "yesterday"], "--since: expected a date or time"),
    ]
    for args, expected in cases:
        code, out, err = rul(capsys, "alerts", *args)
        assert code == 2, args
        assert err.startswith("rul: error: ") and expected in err, (args, err)
        assert err.count("\n") == 1 and out == "", args
