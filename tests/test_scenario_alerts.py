"""Scenarios raise their alerts end to end: the live simulator's fleet steps under a scenario,
its batches are landed, ingested (GX checks, lake) and judged by the alert engine, and each
expected alert opens within two simulated minutes of its condition (duration included)
crossing the threshold; clearing the scenario resolves it."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from alerting.live import evaluate
from alerting.store import list_alerts
from core.ingest import ingest_files
from core.layout import Layout
from pipelines.cli import main
from simulator.live.runner import LiveFleet, land
from simulator.thresholds import load_thresholds

LIMITS = load_thresholds()
TWO_MINUTES = dt.timedelta(minutes=2)


@pytest.fixture
def layout(tmp_path, fleet_toml):
    data = tmp_path / "data"
    assert main(["generate", "--fleet", str(fleet_toml), "--days", "3", "--out",
                 str(data / "lake")]) == 0
    return Layout(data)


class Live:
    """The live fleet stepped at `step_s`, landed, ingested and judged every `batch_s` of
    simulated time (an hour by default)."""

    def __init__(self, layout: Layout, step_s: float = 60.0, batch_s: float = 3600.0) -> None:
        self.layout, self.step_s, self.batch_s = layout, step_s, batch_s
        self.fleet = LiveFleet.from_history(layout.lake_dir)
        self.control = {"scenarios": [], "offsets": {}}
        self.frames: dict[str, list[pl.DataFrame]] = {}
        self.batch = 0

    def apply(self, name: str, target: str, **extra) -> None:
        self.control["scenarios"].append({"name": name, "target": target,
                                          "start_s": self.fleet.t_s + self.step_s} | extra)

    def clear(self) -> None:
        self.control["scenarios"] = []

    def run(self, hours: float) -> None:
        for _ in range(round(hours * 3600 / self.step_s)):
            t = self.fleet.next_time(self.step_s)
            for table, frame in self.fleet.step(t, self.control).items():
                self.frames.setdefault(table, []).append(frame)
            if len(self.frames["telemetry"]) * self.step_s >= self.batch_s:
                self._flush()
        self._flush()

    def _flush(self) -> None:
        frames = {t: pl.concat(f) for t, f in self.frames.items() if f}
        if not frames:
            return
        land(frames, f"{frames['telemetry']['ts'].min():%Y%m%dT%H%M%SZ}-{self.batch:06d}",
             self.layout.landing_dir)
        self.batch += 1
        self.frames = {}
        outcomes = ingest_files(self.layout.data_dir)
        assert all(o.status == "published" for o in outcomes), outcomes
        evaluate(self.layout)

    def telemetry(self) -> pl.DataFrame:
        return pl.read_parquet(self.layout.lake_dir / "telemetry_live" / "*" / "*.parquet",
                               hive_partitioning=False).sort("battery_id", "ts")

    def alerts(self, type_: str) -> pl.DataFrame:
        return list_alerts(self.layout.alerts_db, type=type_)


def _opened(alerts: pl.DataFrame, battery: str, severity: str) -> dt.datetime:
    rows = alerts.filter((pl.col("battery_id") == battery) & (pl.col("severity") == severity))
    if rows.is_empty():
        rows = alerts.filter(pl.col("battery_id") == battery)  # escalated in place
    assert not rows.is_empty(), f"no {severity} alert for {battery}"
    return rows["opened_at"].min()


def _held(tel: pl.DataFrame, above: pl.Expr, minutes: float) -> pl.DataFrame:
    """Per battery, the first reading at which `above` has held for `minutes`."""
    runs = tel.with_columns(hot=above).with_columns(
        run=(pl.col("hot") != pl.col("hot").shift(1).over("battery_id")).fill_null(True)
        .cum_sum().over("battery_id"))
    start = runs.filter("hot").group_by("battery_id", "run").agg(
        pl.col("ts").min().alias("since"), pl.col("ts").max().alias("last"))
    held = start.filter(pl.col("last") - pl.col("since") >= dt.timedelta(minutes=minutes))
    return held.group_by("battery_id").agg(
        (pl.col("since").min() + dt.timedelta(minutes=minutes)).alias("crossed"))


def test_hvac_failure_raises_warning_then_critical_and_clears(layout):
    live = Live(layout, step_s=120.0)
    site = live.fleet.sites[0].seed.site_id
    live.apply("hvac_failure", site)
    live.run(hours=30)
    tel = live.telemetry().filter(pl.col("site_id") == site)
    t = LIMITS.temperature
    warn = _held(tel, pl.col("temperature_c") > t.warning_c, t.warning_minutes)
    crit = _held(tel, pl.col("temperature_c") > t.critical_c, 0)
    assert warn.height and crit.height  # the room got past 45 degC at a battery
    alerts = live.alerts("temperature")
    for battery, crossed in warn.iter_rows():
        assert abs(_opened(alerts, battery, "warning") - crossed) <= TWO_MINUTES
    for battery, crossed in crit.iter_rows():
        row = alerts.filter(pl.col("battery_id") == battery)
        assert row["severity"].to_list() == ["critical"]
        assert row["last_seen_at"][0] >= crossed
    live.clear()
    live.run(hours=20)
    after = live.alerts("temperature")
    assert set(after["status"]) == {"resolved"}


def test_thermal_runaway_raises_a_critical_within_two_minutes(layout):
    live = Live(layout)
    seed = live.fleet.sites[0].seed
    battery = str(seed.battery_id[1])
    live.apply("thermal_runaway", battery)
    live.run(hours=3)
    alerts = live.alerts("thermal_runaway")
    assert alerts["battery_id"].to_list() == [battery]
    assert alerts["severity"][0] == "critical"
    jar = live.telemetry().filter(pl.col("battery_id") == battery)
    assert jar["temperature_c"].max() > 60
    # the condition: 5 degC over the room with float current over 3x normal; the first reading
    # past both is at most two simulated minutes before the alert
    room = pl.read_parquet(layout.lake_dir / "environment_live" / "*" / "*.parquet",
                           hive_partitioning=False).select("site_id", "ts", "room_temp_c")
    hot = jar.join(room, on=["site_id", "ts"]).filter(
        (pl.col("temperature_c") - pl.col("room_temp_c") >= LIMITS.thermal_runaway.above_room_c)
        & (pl.col("current_a") > LIMITS.thermal_runaway.float_current_ratio
           * jar["current_a"][0]))
    assert alerts["opened_at"][0] - hot["ts"].min() <= TWO_MINUTES
    live.clear()


def test_deep_outage_records_the_event_and_a_low_voltage_alert(layout):
    live = Live(layout)
    string = live.fleet.sites[0].seed.string_ids[0]
    live.control["offsets"] = {string: {"discharge_rate": 4.0}}  # a heavy load: deep
    live.apply("power_outage", string, duration_s=4 * 3600)
    live.run(hours=4)
    events = pl.read_parquet(layout.lake_dir / "discharge_events_live" / "*" / "*.parquet",
                             hive_partitioning=False)
    assert events["string_id"].to_list() == [string]
    assert events["depth_of_discharge"][0] > 0.8 and events["load_lost"][0]
    alerts = live.alerts("discharge_low_voltage")
    assert not alerts.is_empty() and set(alerts["string_id"]) == {string}
    tel = live.telemetry().filter(pl.col("mode") == "discharge")
    low = tel.filter(pl.col("voltage_v") < LIMITS.discharge.warning_block_v)
    first = low.group_by("battery_id").agg(pl.col("ts").min())
    for battery, crossed in first.iter_rows():
        assert abs(_opened(alerts, battery, "warning") - crossed) <= TWO_MINUTES


def test_accelerated_degradation_raises_resistance_alerts(layout):
    live = Live(layout, step_s=1800.0, batch_s=86_400.0)
    string = live.fleet.sites[0].seed.string_ids[0]
    live.apply("accelerated_degradation", string, params={"factor": 3000.0})
    live.run(hours=24 * 8)
    alerts = live.alerts("resistance_rise")
    assert not alerts.is_empty()
    assert set(alerts["string_id"]) == {string}
    assert "critical" in set(alerts["severity"])
