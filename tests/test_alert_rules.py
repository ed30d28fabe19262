"""The alert rules of DOMAIN §5 on small synthetic batches: each fires at its limit, stays
quiet inside it, leaves unjudgeable rows out, and clears past its hysteresis margin; the
thresholds' site and season overrides; baselines from history. The builders here are shared
with the other alert tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import tomlkit

from alerting import rules
from alerting.baselines import baselines_from_history
from alerting.engine import evaluate_telemetry
from alerting.limits import with_limits
from alerting.store import list_alerts
from simulator.schema import ENVIRONMENT, TELEMETRY
from simulator.thresholds import DEFAULT_THRESHOLDS_PATH, load_thresholds, season_of

SITE = "DC-TST-01"
STRING = f"{SITE}-UPS-01-S1"
T0 = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)  # rainy season
THRESHOLDS = load_thresholds()


def battery(k: int, string: str = STRING) -> str:
    return f"{string}-J{k:02d}"


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def readings(minutes: float = 60, batteries: int = 4, step_s: int = 60, start: float = 0,
             seed: int = 0, site: str = SITE) -> pl.DataFrame:
    """Healthy float readings with a real monitor's noise, so no rule fires on them."""
    first = at(start)
    n = int(minutes * 60 // step_s)
    times = pl.DataFrame({"ts": pl.datetime_range(
        first, first + dt.timedelta(seconds=step_s * (n - 1)), f"{step_s}s", eager=True)})
    string = f"{site}-UPS-01-S1"
    units = pl.DataFrame({"battery_id": [battery(k, string) for k in range(1, batteries + 1)]})
    frame = units.join(times, how="cross")
    rng = np.random.default_rng(seed)
    m = frame.height
    resistance = 3.0 * (1 + rng.normal(0, 0.01, m))
    return frame.with_columns(
        string_id=pl.lit(string), site_id=pl.lit(site),
        voltage_v=pl.Series(13.50 + rng.normal(0, 0.005, m)),
        current_a=pl.Series(0.10 + rng.normal(0, 0.002, m)),
        temperature_c=pl.Series(25.0 + rng.normal(0, 0.15, m)),
        resistance_mohm=pl.Series(resistance), conductance_s=pl.Series(1000 / resistance),
        soc_pct=pl.lit(100.0), mode=pl.lit("float"),
    ).select(list(TELEMETRY)).cast(TELEMETRY).sort("ts", "battery_id")


def patch(frame: pl.DataFrame, k: int | None = None, start: float = -1e9, end: float = 1e9,
          **values) -> pl.DataFrame:
    """Set columns for battery k (all if None) over readings in [start, end) minutes."""
    where = (pl.col("ts") >= at(start)) & (pl.col("ts") < at(end))
    if k is not None:
        where &= pl.col("battery_id").str.ends_with(f"-J{k:02d}")
    return frame.with_columns(
        pl.when(where).then(pl.lit(v)).otherwise(pl.col(c)).cast(TELEMETRY[c]).alias(c)
        for c, v in values.items())


def environment(minutes: float = 60, start: float = 0, step_s: int = 60, room: float = 24.0,
                site: str = SITE) -> pl.DataFrame:
    n = int(minutes * 60 // step_s)
    ts = pl.datetime_range(at(start), at(start) + dt.timedelta(seconds=step_s * (n - 1)),
                           f"{step_s}s", eager=True)
    return pl.DataFrame({"site_id": site, "ts": ts, "outdoor_temp_c": 32.0,
                         "room_temp_c": room, "humidity_pct": 75.0, "hvac_state": "normal",
                         "grid_up": True}).cast(ENVIRONMENT)


def baselines(frame: pl.DataFrame, resistance: float = 3.0, current: float = 0.10) -> pl.DataFrame:
    return pl.DataFrame({"battery_id": frame["battery_id"].unique().sort(),
                         "resistance_baseline_mohm": resistance,
                         "float_current_baseline_a": current})


def of(conditions: pl.DataFrame, k: int) -> pl.DataFrame:
    return conditions.filter(pl.col("battery_id").str.ends_with(f"-J{k:02d}")).sort("ts")


def test_float_voltage_is_judged_at_25c_on_float_only():
    f = readings(batteries=3)
    f = patch(f, 1, temperature_c=35.0, voltage_v=13.32)  # the charger's 13.50 V at 35 degC
    f = patch(f, 2, voltage_v=13.30)  # low at 25 degC: sulfation territory
    f = patch(f, 3, voltage_v=13.30, mode="boost")  # not on float: not judged
    c = rules.float_voltage(f, THRESHOLDS)
    assert of(c, 1)["severity"].null_count() == 60 and of(c, 1)["cleared"].all()
    assert of(c, 1)["value"].to_numpy() == pytest.approx(13.50, abs=1e-4)
    low = of(c, 2)
    assert (low["severity"] == "warning").all() and (low["threshold"] == 13.38).all()
    assert not low["cleared"].any() and (low["warning_hold_s"] == 15 * 60).all()
    assert of(c, 3).is_empty()


def test_temperature_warning_critical_band_and_clear():
    f = readings()
    f = patch(patch(patch(f, 1, temperature_c=36.0), 2, temperature_c=46.0), 3,
              temperature_c=34.5)
    c = rules.temperature(f, THRESHOLDS)
    assert set(of(c, 1)["severity"]) == {"warning"} and set(of(c, 1)["threshold"]) == {35.0}
    assert set(of(c, 2)["severity"]) == {"critical"} and set(of(c, 2)["threshold"]) == {45.0}
    band = of(c, 3)  # under the limit but within 1 degC of it: neither active nor cleared
    assert band["severity"].null_count() == band.height and not band["cleared"].any()
    assert of(c, 4)["cleared"].all()
    assert set(c["warning_hold_s"]) == {300.0} and set(c["critical_hold_s"]) == {0.0}


def test_thermal_runaway_needs_the_rise_and_the_current_together():
    f = readings()
    f = patch(f, 1, temperature_c=30.0, current_a=0.35)  # 6 degC over room, 3.5x float current
    f = patch(f, 2, temperature_c=30.0)  # hot, normal current
    f = patch(f, 3, current_a=0.35)  # high current, at room temperature + 1
    c = rules.thermal_runaway(f, environment(), baselines(f), THRESHOLDS)
    hot = of(c, 1)
    assert (hot["severity"] == "critical").all() and hot["value"].to_numpy() == pytest.approx(6)
    for k in (2, 3, 4):
        assert of(c, k)["severity"].null_count() == 60 and of(c, k)["cleared"].all()
    no_room = environment(site="DC-ELSEWHERE-01")  # no room reading: not judged
    assert rules.thermal_runaway(f, no_room, baselines(f), THRESHOLDS).is_empty()


def test_resistance_rise_over_the_units_own_baseline():
    f = patch(patch(readings(), 1, resistance_mohm=3.75), 2, resistance_mohm=4.8)
    c = rules.resistance_rise(f, baselines(f).filter(~pl.col("battery_id").str.ends_with("J04")),
                              THRESHOLDS)
    assert set(of(c, 1)["severity"]) == {"warning"} and of(c, 1)["value"][0] == pytest.approx(25)
    assert set(of(c, 2)["severity"]) == {"critical"} and set(of(c, 2)["threshold"]) == {50.0}
    assert of(c, 3)["cleared"].all()
    assert of(c, 4).is_empty()  # no baseline: nothing to compare with
    assert set(c["warning_hold_s"]) == {2880 * 60.0}


def test_string_imbalance_is_a_string_condition():
    f = patch(readings(), 2, voltage_v=12.9)
    c = rules.string_imbalance(f, THRESHOLDS)
    assert c.height == 60 and c["battery_id"].null_count() == 60
    assert set(c["string_id"]) == {STRING} and (c["severity"] == "warning").all()
    assert c["value"].min() > 0.55
    assert rules.string_imbalance(readings(), THRESHOLDS)["cleared"].all()


def test_stuck_sensor_counts_from_the_last_change():
    f = patch(readings(), 1, start=10, voltage_v=13.47, temperature_c=25.3)
    c = rules.stuck_sensor(f, THRESHOLDS)
    stuck = of(c, 1)
    assert stuck.height == 59  # the first reading has nothing to compare with
    active = stuck.filter(pl.col("severity") == "warning")
    assert active["ts"].min() == at(11) and active["since"].min() == at(10)
    assert of(c, 2)["severity"].null_count() == 59 and of(c, 2)["cleared"].all()


def test_missing_readings_per_whole_hour_with_silent_roster_units():
    f = readings(minutes=120, batteries=3)
    f = f.filter(~(pl.col("battery_id").str.ends_with("J01") & (pl.col("ts") < at(15))))
    roster = pl.DataFrame({"site_id": [SITE], "string_id": [STRING], "battery_id": [battery(9)]})
    c = rules.missing_readings(f, THRESHOLDS, roster)
    gappy = of(c, 1)
    assert gappy["ts"].to_list() == [at(60), at(120)] and gappy["since"][0] == at(0)
    assert gappy["value"].to_list() == pytest.approx([25.0, 0.0])
    assert gappy["severity"].to_list() == ["warning", None] and gappy["cleared"].to_list() == [
        False, True]
    assert of(c, 9)["value"].to_list() == [100.0, 100.0]  # silent while its site reports
    assert of(c, 2)["value"].to_list() == [0.0, 0.0]
    late = rules.missing_readings(readings(minutes=90, start=30), THRESHOLDS)
    assert set(late["since"]) == {at(60)}  # 00:30-01:00 is not a whole hour


def test_low_block_voltage_on_discharge_only():
    f = patch(readings(), None, mode="discharge", voltage_v=11.6)
    f = patch(patch(f, 1, voltage_v=10.7), 2, voltage_v=10.4)
    f = patch(f, 4, mode="boost", voltage_v=10.0)  # not discharging: clears
    c = rules.discharge_low_voltage(f, THRESHOLDS)
    assert set(of(c, 1)["severity"]) == {"warning"} and set(of(c, 1)["threshold"]) == {10.8}
    assert set(of(c, 2)["severity"]) == {"critical"} and set(of(c, 2)["threshold"]) == {10.5}
    assert of(c, 3)["cleared"].all() and of(c, 4)["cleared"].all()
    assert of(c, 4)["severity"].null_count() == 60


def test_rul_rules_on_p10_of_ok_predictions():
    p = pl.DataFrame({
        "battery_id": [battery(k) for k in range(1, 6)], "site_id": SITE, "string_id": STRING,
        "as_of": [dt.date(2024, 6, 1)] * 5, "rul_p10_days": [200.0, 150.0, 60.0, 50.0, 185.0],
        "status": ["ok", "ok", "ok", "insufficient_data", "ok"]})
    c = rules.rul_risk(p, THRESHOLDS).sort("battery_id")
    assert c["severity"].to_list() == ["warning" if s == "w" else ("critical" if s else None)
                                       for s in [None, "w", "c", None]]
    assert c["cleared"].to_list() == [True, False, False, False]  # 185 < 180 + 14: band
    assert c["threshold"].to_list() == [180.0, 180.0, 90.0, 180.0]
    assert set(c["ts"]) == {T0}


def _thresholds_with(tmp_path: Path, **sections) -> Path:
    doc = tomlkit.parse(DEFAULT_THRESHOLDS_PATH.read_text(encoding="utf-8"))
    for name, value in sections.items():
        doc[name] = value
    path = tmp_path / "thresholds.toml"
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    return path


def test_site_and_season_overrides(tmp_path):
    path = _thresholds_with(tmp_path, seasons={"hot": {"temperature": {"warning_c": 36.0}}},
                            sites={SITE: {"temperature": {"warning_c": 37.0}}})
    thresholds = load_thresholds(path)
    assert thresholds.effective(SITE, "rainy").temperature.warning_c == 37.0
    assert thresholds.effective(SITE, "hot").temperature.warning_c == 37.0  # site wins
    assert thresholds.effective("DC-OTHER-01", "hot").temperature.warning_c == 36.0
    assert thresholds.effective("DC-OTHER-01", "cool").temperature == THRESHOLDS.temperature
    assert thresholds.risk_level(50) == "critical" and thresholds.resistance.critical_rise_pct == 50
    # 2024-02-29 17:00 UTC is midnight of 1 March in Bangkok: the hot season starts
    edge = pl.DataFrame({"site_id": ["DC-OTHER-01"] * 2, "ts": [
        dt.datetime(2024, 2, 29, 16, 59, tzinfo=dt.UTC), dt.datetime(2024, 2, 29, 17, tzinfo=dt.UTC)]})
    limits = with_limits(edge, thresholds)
    assert limits["season"].to_list() == ["cool", "hot"]
    assert limits["temperature.warning_c"].to_list() == [35.0, 36.0]
    assert season_of(dt.datetime(2024, 10, 31, 17, tzinfo=dt.UTC)) == "cool"


@pytest.mark.parametrize(("sections", "expected"), [
    ({"sites": {SITE: {"temprature": {"warning_c": 36.0}}}}, f"sites.{SITE}.temprature: unknown"),
    ({"seasons": {"hot": {"temperature": {"warn_c": 36.0}}}}, "seasons.hot.temperature.warn_c"),
    ({"seasons": {"summer": {}}}, "seasons.summer: Input should be 'hot', 'rainy' or 'cool'"),
    ({"sites": {SITE: {"temperature": {"warning_c": 50.0}}}},
     "warning_c (50.0) must be below critical_c (45.0)"),
])
def test_bad_overrides_are_one_line_errors(tmp_path, sections, expected):
    with pytest.raises(ValueError) as exc:
        load_thresholds(_thresholds_with(tmp_path, **sections))
    assert expected in str(exc.value) and "\n" not in str(exc.value)


def test_baselines_from_history():
    hourly = readings(minutes=70 * 24 * 60, batteries=2, step_s=3600)
    day = (pl.col("ts") - pl.lit(T0)).dt.total_days()
    history = hourly.with_columns(
        resistance_mohm=pl.when(day < 30).then(3.0).otherwise(3.6).cast(pl.Float32),
        current_a=pl.when(day < 40).then(0.1).otherwise(0.2).cast(pl.Float32))
    history = patch(history, None, start=10 * 1440, end=11 * 1440, mode="discharge",
                    resistance_mohm=9.9, current_a=-50.0)  # other modes do not count
    b = baselines_from_history(history.lazy())
    assert b.columns == ["battery_id", "resistance_baseline_mohm", "float_current_baseline_a"]
    assert b["resistance_baseline_mohm"].to_list() == pytest.approx([3.0, 3.0])
    assert b["float_current_baseline_a"].to_list() == pytest.approx([0.2, 0.2])


def test_bad_input_names_the_frame_and_column(tmp_path):
    with pytest.raises(ValueError, match=r"^telemetry: missing column\(s\) mode$"):
        evaluate_telemetry(tmp_path / "a.sqlite", readings().drop("mode"), environment(),
                           baselines(readings()), THRESHOLDS)


def _fires_then_clears(tmp_path: Path, bad: pl.DataFrame, good: pl.DataFrame, kind: str,
                       env: pl.DataFrame | None = None) -> pl.DataFrame:
    db = tmp_path / "alerts.sqlite"
    env = environment(minutes=6 * 24 * 60) if env is None else env
    base = baselines(bad)
    first = evaluate_telemetry(db, bad, env, base, THRESHOLDS)
    opened = list_alerts(db, type=kind)
    assert opened.height == 1 and opened["alert_id"][0] in first.opened
    assert opened["status"][0] == "open"
    second = evaluate_telemetry(db, good, env, base, THRESHOLDS)
    assert tuple(opened["alert_id"]) == tuple(a for a in second.resolved if a in opened["alert_id"])
    after = list_alerts(db, type=kind)
    assert after.height == 1 and after["status"][0] == "resolved"
    assert list_alerts(db, status="open").is_empty()  # no other rule fired on these readings
    return after


SCENARIOS = {  # kind: (bad batch, its healthy successor, when the alert opens, when it clears)
    "float_voltage": (lambda: patch(readings(), 1, voltage_v=13.9),
                      lambda: readings(start=60, seed=1), 15, 60),
    "temperature": (lambda: patch(readings(), 1, temperature_c=36.0),
                    lambda: readings(start=60, seed=1), 5, 60),
    "thermal_runaway": (lambda: patch(patch(readings(), None, current_a=0.35), 1,
                                      temperature_c=30.0),
                        lambda: readings(start=60, seed=1), 0, 60),
    "resistance_rise": (lambda: patch(readings(minutes=3 * 1440, step_s=3600), 1,
                                      resistance_mohm=3.75),
                        lambda: readings(minutes=1440, step_s=3600, start=3 * 1440, seed=1),
                        2880, 3 * 1440),
    "string_imbalance": (lambda: patch(readings(), 2, voltage_v=12.9),
                         lambda: readings(start=60, seed=1), 15, 60),
    "stuck_sensor": (lambda: patch(readings(minutes=90), 1, voltage_v=13.47, temperature_c=25.3),
                     # a batch's first reading has no predecessor to differ from: the
                     # second one clears
                     lambda: readings(start=90, seed=1), 60, 91),
    "missing_readings": (lambda: readings().filter(~(
        pl.col("battery_id").str.ends_with("J01") & (pl.col("ts") < at(30)))),
        lambda: readings(start=60, seed=1), 60, 120),
    "discharge_low_voltage": (lambda: patch(patch(readings(), None, mode="discharge",
                                                  voltage_v=11.8, current_a=-20.0), 1,
                                            voltage_v=10.7),
                              lambda: readings(start=60, seed=1), 0, 60),
}


@pytest.mark.parametrize("kind", sorted(SCENARIOS))
def test_each_rule_opens_and_clears_through_the_engine(tmp_path, kind):
    bad, good, opens, clears = SCENARIOS[kind]
    alert = _fires_then_clears(tmp_path, bad(), good(), kind)
    assert alert["opened_at"][0] == at(opens)
    assert alert["resolved_at"][0] == at(clears)
