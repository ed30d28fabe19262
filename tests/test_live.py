"""The live simulator: it continues the history without a seam, its scenarios do what they
say with the history's physics, and a `kill -9` loses and duplicates nothing."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines.cli import main
from simulator.generate import Window, simulate_site
from simulator.live import scenarios as sc
from simulator.live.engine import LiveSite
from simulator.live.seed import live_seed

DAYS = 7


@pytest.fixture(scope="module")
def history():
    from simulator.config import load_fleet

    fleet = load_fleet(None)
    return simulate_site(fleet, fleet.sites[0].code, Window(dt.date(2024, 1, 1), DAYS), 42)


def run(seed, scenarios=(), offsets=None, ticks=24, step_s=300.0):
    """Step a site from the history's end; returns its telemetry, environment and events."""
    site, t = LiveSite(seed), seed.t_end_s
    out: dict[str, list[pl.DataFrame]] = {"telemetry": [], "environment": [],
                                          "discharge_events": []}
    for _ in range(ticks):
        active = [s | {"start_s": seed.t_end_s} for s in scenarios]
        active = [s for s in active if not sc.expired(s, t)]
        for table, frame in site.step(t, sc.effects(site, active, offsets or {}, t)).items():
            out[table].append(frame)
        t += step_s
    return {k: pl.concat(v) for k, v in out.items()}


def test_first_live_readings_continue_the_last_history_hour(history):
    tel = history.telemetry()
    last = tel.filter(pl.col("ts") == tel["ts"].max())
    live = run(live_seed(history), ticks=1)
    first = live["telemetry"]
    assert first["ts"].unique().to_list() == [dt.datetime(2024, 1, 8, tzinfo=dt.UTC)]
    both = last.join(first, on="battery_id", suffix="_live")
    assert both.height == last.height == first.height  # every in-service battery, once
    assert both["mode"].to_list() == both["mode_live"].to_list()
    # one hour apart: within the monitor's noise and an hour's drift of the room
    for column, limit in (("voltage_v", 0.05), ("temperature_c", 1.0), ("current_a", 0.05),
                          ("soc_pct", 0.5)):
        assert (both[column] - both[f"{column}_live"]).abs().max() < limit, column
    rel = ((both["resistance_mohm_live"] - both["resistance_mohm"]) / both["resistance_mohm"])
    assert rel.abs().median() < 0.03
    room = float(history.environment["room_temp_c"][-1])
    assert abs(float(live["environment"]["room_temp_c"][0]) - room) < 0.5


def test_hvac_failure_heats_the_room_about_two_degrees_an_hour(history):
    seed = live_seed(history)
    out = run(seed, [{"name": "hvac_failure", "target": seed.site_id}], ticks=37)
    room = out["environment"]["room_temp_c"].to_numpy()
    rise = (room[12] - room[0])  # first hour (12 x 5 min)
    assert 1.2 < rise < 3.0
    assert room[-1] > room[0] + 3.5  # still climbing after three hours, toward ~40 degC
    block = out["telemetry"].group_by("ts").agg(pl.col("temperature_c").mean()).sort("ts")
    assert block["temperature_c"][12] < room[12] + 1.5  # the blocks lag the room


def test_thermal_runaway_passes_60_c_with_a_rising_float_current(history):
    seed = live_seed(history)
    battery = str(seed.battery_id[3])
    out = run(seed, [{"name": "thermal_runaway", "target": battery}], ticks=36)
    jar = out["telemetry"].filter(pl.col("battery_id") == battery).sort("ts")
    assert jar["temperature_c"].max() > 60
    assert jar["current_a"][-1] > 3 * jar["current_a"][0]
    others = out["telemetry"].filter(pl.col("battery_id") != battery)
    assert others["temperature_c"].max() < jar["temperature_c"].max() - 15


def test_power_outage_discharges_then_boosts_and_records_the_event(history):
    seed = live_seed(history)
    string = seed.string_ids[0]
    out = run(seed, [{"name": "power_outage", "target": string, "duration_s": 3600}],
              ticks=45, step_s=120)
    modes = (out["telemetry"].filter(pl.col("string_id") == string)
             .group_by("ts").agg(pl.col("mode").first(), pl.col("soc_pct").mean()).sort("ts"))
    assert modes["mode"][:30].to_list() == ["discharge"] * 30
    assert set(modes["mode"][31:].to_list()) == {"boost"}
    assert modes["soc_pct"].min() < 95
    events = out["discharge_events"]
    assert events.height == 1 and events["string_id"][0] == string
    assert events["runtime_minutes"][0] == pytest.approx(60, abs=2.1)
    others = out["telemetry"].filter(pl.col("string_id") != string)
    assert set(others["mode"].to_list()) <= {"float", "equalize"}


def test_accelerated_degradation_raises_resistance_of_that_string_only(history):
    seed = live_seed(history)
    string = seed.string_ids[0]
    out = run(seed, [{"name": "accelerated_degradation", "target": string,
                      "params": {"factor": 20_000}}], ticks=24, step_s=3600)
    r = out["telemetry"].group_by("ts", pl.col("string_id") == string).agg(
        pl.col("resistance_mohm").median()).sort("ts")
    mine = r.filter(pl.col("string_id"))["resistance_mohm"].to_numpy()
    rest = r.filter(~pl.col("string_id"))["resistance_mohm"].to_numpy()
    assert mine[-1] > 1.2 * mine[0]
    assert abs(rest[-1] / rest[0] - 1) < 0.05


def test_heat_wave_and_offsets(history):
    seed = live_seed(history)
    base = run(seed, ticks=3)["environment"]["outdoor_temp_c"].to_numpy()
    hot = run(seed, [{"name": "heat_wave", "target": seed.site_id, "params": {"delta_c": 12}}],
              ticks=3)["environment"]["outdoor_temp_c"].to_numpy()
    assert np.allclose(hot - base, 12, atol=1e-3)
    string = seed.string_ids[0]
    high = run(seed, offsets={string: {"voltage_v": 0.3}}, ticks=2)["telemetry"]
    normal = run(seed, ticks=2)["telemetry"]
    mine = pl.col("string_id") == string
    assert high.filter(mine)["current_a"].mean() > 1.3 * normal.filter(mine)["current_a"].mean()


@pytest.fixture
def live_lake(tmp_path, fleet_toml, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("RUL_DATA_DIR", str(data))
    assert main(["generate", "--fleet", str(fleet_toml), "--days", "3", "--out",
                 str(data / "lake")]) == 0
    return data


def test_control_errors_are_one_line(live_lake, capsys):
    capsys.readouterr()
    cases = [
        (["simulate", "scenario", "apply", "meteor", "--target", "DC-CNX-01"], "unknown scenario"),
        (["simulate", "scenario", "apply", "hvac_failure", "--target", "DC-NOPE"],
         "unknown target"),
        (["simulate", "scenario", "apply", "thermal_runaway", "--target", "DC-CNX-01"],
         "applies to a battery"),
        (["simulate", "scenario", "apply", "heat_wave", "--target", "DC-CNX-01", "--param",
          "delta_c=40"], "outside 5..15"),
        (["simulate", "scenario", "apply", "hvac_failure", "--target", "DC-CNX-01",
          "--duration", "soon"], "--duration"),
        (["simulate", "adjust", "--target", "DC-CNX-01", "--voltage", "5"], "outside -1..1"),
        (["simulate", "scenario", "clear", "sc99"], "no active scenario"),
        (["simulate", "start", "--speed", "fast"], "--speed"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("rul: error:") and expected in err, err


def _landed(data: Path) -> pl.DataFrame:
    files = sorted((data / "landing" / "telemetry").glob("*.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame()


def test_kill_9_and_restart_lose_and_duplicate_nothing(live_lake):
    env = os.environ | {"RUL_DATA_DIR": str(live_lake)}
    cmd = [sys.executable, "-m", "pipelines.cli", "simulate", "start", "--tick", "0.2s",
           "--speed", "300", "--rotate", "1s"]

    def start():
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def wait_files(n, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(list((live_lake / "landing" / "telemetry").glob("*.parquet"))) >= n:
                return
            time.sleep(0.1)
        raise AssertionError(f"fewer than {n} landed files")

    first = start()
    wait_files(3)
    time.sleep(0.5)  # in the middle of a batch: buffered readings die with the process
    first.send_signal(signal.SIGKILL)
    first.wait()
    files_before = len(list((live_lake / "landing" / "telemetry").glob("*.parquet")))
    second = start()
    wait_files(files_before + 3)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0
    tel = _landed(live_lake)
    assert tel.select(pl.struct("battery_id", "ts").is_duplicated().sum()).item() == 0
    steps = (tel.sort("battery_id", "ts").group_by("battery_id")
             .agg(pl.col("ts").diff().dt.total_seconds().drop_nulls().alias("d")))
    gaps = steps.explode("d")["d"].unique().to_list()
    assert gaps == [60]  # one tick of 0.2 s at 300x, never more
    assert tel.group_by("battery_id").len()["len"].n_unique() == 1


def test_dagster_control_job_applies_and_rejects(live_lake):
    from assets.live.control import simulator_control
    from assets.resources.storage import LakeStorage
    from simulator.live.control import Control

    resources = {"storage": LakeStorage(base_dir=str(live_lake))}
    config = {"ops": {"control_simulator": {"config": {
        "action": "apply", "scenario": "hvac_failure", "target": "DC-CNX-01",
        "duration_minutes": 30}}}}
    result = simulator_control.execute_in_process(run_config=config, resources=resources)
    assert result.success
    active = Control(live_lake / "live").read()["scenarios"]
    assert [(s["name"], s["target"], s["duration_s"]) for s in active] == [
        ("hvac_failure", "DC-CNX-01", 1800)]
    assert active[0]["applied_by"].startswith("dagster:")
    config["ops"]["control_simulator"]["config"]["target"] = "DC-NOPE"
    bad = simulator_control.execute_in_process(run_config=config, resources=resources,
                                               raise_on_error=False)
    assert not bad.success
    failure = bad.get_step_failure_events()[0].step_failure_data.error
    assert "unknown target 'DC-NOPE'" in failure.message
