"""The climate what-if on hand-made frames: no change reproduces the baseline, cooler never
shortens and hotter never lengthens life, removing hot-weather faults lengthens it, a uniform
shift by the halving interval halves it (the simulator's own Arrhenius law), and a hot site
replaces a block twice within three years."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.replacement import Costs
from models.whatif import LIFE_DAYS_PER_YEAR, Scenario, replacements, what_if
from simulator.config import load_fleet
from simulator.physics import PhysicsParams, arrhenius_factor
from simulator.schema import TS

START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
AS_OF = START + dt.timedelta(days=365)
HOURS = 365 * 24
SETPOINT = 23.0
P = PhysicsParams()
MODELS = load_fleet().battery_models
COSTS = Costs.model_validate({
    "currency": {"code": "THB"},
    "models": {"AGM12-120": {"unit_price": 1000.0, "labour_per_block": 100.0},
               "AGM12-100": {"unit_price": 800.0, "labour_per_block": 100.0}},
    "per_string": {"fixed_cost": 500.0},
})


def _env(room=None, outdoor=None, state=None) -> pl.DataFrame:
    """A year of hourly rows; by default a Thai-like outdoor cycle, a room held near the set
    point, a failed-HVAC afternoon in April and a degraded day in July (both hot outside)."""
    h = np.arange(HOURS)
    if outdoor is None:
        outdoor = 30.0 + 4.8 * np.cos(2 * np.pi * (h % 24 - 8) / 24) + 2.0 * np.sin(
            2 * np.pi * h / HOURS)
    outdoor = np.broadcast_to(np.asarray(outdoor, dtype=np.float64), (HOURS,))
    if state is None:
        state = np.full(HOURS, "normal", dtype=object)
        state[99 * 24 + 5: 99 * 24 + 12] = "failed"  # 10 April, 12:00-19:00 local
        state[181 * 24: 182 * 24] = "degraded"
    if room is None:
        room = np.select([state == "failed", state == "degraded"],
                         [outdoor + 6.0, SETPOINT + 0.45 * (outdoor + 6.0 - SETPOINT)],
                         SETPOINT + 0.06 * np.maximum(outdoor - SETPOINT, 0.0))
    room = np.broadcast_to(np.asarray(room, dtype=np.float64), (HOURS,))
    ts = pl.datetime_range(START, START + dt.timedelta(hours=HOURS - 1), "1h", eager=True,
                           time_zone="UTC")
    return pl.DataFrame({"site_id": "A", "ts": ts, "outdoor_temp_c": outdoor,
                         "room_temp_c": room, "hvac_state": list(state)},
                        schema_overrides={"ts": TS, "outdoor_temp_c": pl.Float32,
                                          "room_temp_c": pl.Float32})


def _batteries() -> pl.DataFrame:
    rows = [{"battery_id": f"{s}-J{k}", "site_id": "A", "string_id": s, "position": k,
             "battery_model": m}
            for s, m in (("A-S1", "AGM12-120"), ("A-S2", "AGM12-100")) for k in range(1, 5)]
    return pl.DataFrame(rows, schema_overrides={"position": pl.Int32})


def _predictions(p50=(30.0, 200.0, 700.0, 1500.0, 30.0, 300.0, 900.0, None)) -> pl.DataFrame:
    ids = _batteries()["battery_id"].to_list()
    rows = [{"battery_id": b, "site_id": "A", "string_id": b[:4], "as_of": AS_OF,
             "rul_p10_days": None if v is None else 0.5 * v, "rul_p50_days": v,
             "rul_p90_days": None if v is None else 2.0 * v,
             "status": "insufficient_data" if v is None else "ok"}
            for b, v in zip(ids, p50, strict=True)]
    return pl.DataFrame(rows, schema_overrides={"as_of": TS})


def _run(scenario: Scenario, env: pl.DataFrame | None = None, predictions=None, **kw):
    return what_if(_predictions() if predictions is None else predictions,
                   _env() if env is None else env, _batteries(), MODELS, COSTS, scenario,
                   setpoint_c=SETPOINT, **kw)


ENV = _env()


def test_no_change_reproduces_the_baseline_exactly():
    r = _run(Scenario(0.0, False), ENV, hotspot_c=2.0)
    assert r.life_ratio == 1.0 and r.mean_af_scenario == r.mean_af_baseline
    assert r.year["scenario_room_c"].equals(r.year["room_temp_c"])
    for q in ("rul_p10_days", "rul_p50_days", "rul_p90_days"):
        assert r.batteries[f"scenario_{q}"].equals(r.batteries[q])
    h = r.horizons
    assert (h["delta_replacements"] == 0).all() and (h["delta_cost"] == 0).all()
    assert h["baseline_cost"].equals(h["scenario_cost"])


@settings(max_examples=25, deadline=None)
@given(st.floats(-4.0, 6.0), st.floats(-4.0, 6.0), st.booleans())
def test_cooler_never_shortens_and_hotter_never_lengthens(d1, d2, remove):
    lo, hi = sorted((d1, d2))
    cool, hot = _run(Scenario(lo, remove), ENV), _run(Scenario(hi, remove), ENV)
    assert cool.life_ratio >= hot.life_ratio
    if not remove:
        assert (cool.life_ratio >= 1.0) if lo <= 0 else True
        assert (hot.life_ratio <= 1.0) if hi >= 0 else True
    for r in (cool, hot):
        assert (r.horizons["scenario_low"] <= r.horizons["scenario_replacements"]).all()
        assert (r.horizons["scenario_replacements"] <= r.horizons["scenario_high"]).all()
    assert (cool.horizons["scenario_replacements"]
            <= hot.horizons["scenario_replacements"]).all()


def test_removing_hot_weather_faults_lengthens_life():
    r = _run(Scenario(0.0, True), ENV)
    assert r.life_ratio > 1.0 and r.mean_room_c_scenario < r.mean_room_c_baseline
    assert (r.batteries["scenario_rul_p50_days"] > r.batteries["rul_p50_days"]).all()
    assert any("faults removed" in a for a in r.assumptions)
    calm = _env(state=np.full(HOURS, "normal", dtype=object))
    assert _run(Scenario(0.0, True), calm).life_ratio == 1.0  # nothing to remove


def test_shift_by_the_halving_interval_halves_life():
    # a room held at 25 degC, cooler outside than the set point: every hour moves by delta
    env = _env(room=25.0, outdoor=20.0, state=np.full(HOURS, "normal", dtype=object))
    d = P.halving_interval_c
    r = what_if(_predictions(), env, _batteries(), MODELS, COSTS, Scenario(d, False),
                setpoint_c=25.0, params=P)
    expected = float(arrhenius_factor(25.0, P) / arrhenius_factor(25.0 + d, P))
    assert r.life_ratio == pytest.approx(expected, rel=1e-9)
    assert r.life_ratio == pytest.approx(0.5, rel=1e-9)  # the simulator's definition
    assert r.mean_room_c_scenario == pytest.approx(25.0 + d, abs=1e-5)
    p50 = r.batteries["rul_p50_days"].to_numpy()
    assert r.batteries["scenario_rul_p50_days"].to_numpy() == pytest.approx(p50 * expected)


def test_a_hot_site_replaces_twice_within_three_years():
    env = _env(room=42.0, outdoor=36.0, state=np.full(HOURS, "normal", dtype=object))
    preds = _predictions(p50=(30.0, 30.0, 30.0, 30.0, 5000.0, 5000.0, 5000.0, 5000.0))
    r = _run(Scenario(0.0, False), env, preds)
    af = float(arrhenius_factor(42.0, P))
    life_days = 10.0 * LIFE_DAYS_PER_YEAR / af  # AGM12-120 design life 10 y at 25 degC
    assert 30.0 + life_days <= 3 * 365 < 30.0 + 2 * life_days  # the premise of the test
    by_year = {row["years"]: row for row in r.horizons.iter_rows(named=True)}
    assert by_year[1]["baseline_replacements"] == 4
    assert by_year[3]["baseline_replacements"] == 8
    # 8 blocks, two visits to A-S1 in different years
    assert by_year[3]["baseline_cost"] == pytest.approx(8 * 1100.0 + 2 * 500.0)
    cool = _run(Scenario(0.0, False), _env(room=25.0, outdoor=20.0,
                                          state=np.full(HOURS, "normal", dtype=object)), preds)
    assert cool.horizons.filter(pl.col("years") == 3)["baseline_replacements"].item() == 4


def test_replacement_counting_rule():
    n = replacements(np.array([0.0, 100.0, 400.0, 365.0]), np.array([100.0] * 4), 365)
    assert n.tolist() == [4, 3, 0, 1]


def test_unscored_are_counted_and_inputs_are_checked():
    r = _run(Scenario(1.0, False), ENV)
    assert r.unscored == 1 and r.batteries.height == 7 and r.currency == "THB"
    assert r.assumptions and all(isinstance(a, str) for a in r.assumptions)
    with pytest.raises(ValueError, match="outdoor_temp_c"):
        _run(Scenario(), ENV.drop("outdoor_temp_c"))
    two_sites = pl.concat([_predictions(), _predictions().with_columns(site_id=pl.lit("B"))])
    with pytest.raises(ValueError, match="one site"):
        _run(Scenario(), ENV, two_sites)
