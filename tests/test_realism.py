"""What a battery engineer checks first: series strings, charging, rate-dependent discharge,
removed blocks, end-of-life practice, design life, outage rates, runaway risk, humidity and
the monitor's measurement errors (issue 7's review, each finding with its test)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from conftest import small_fleet_raw
from test_physics import NO_EVENTS, T0, YEAR, environment, units

from simulator import ageing, practice
from simulator import physics as ph
from simulator.config import Region, SiteSettings, parse_fleet
from simulator.environment import SiteEnvironment
from simulator.generate import Window, simulate_site
from simulator.operations import Schedule
from simulator.thresholds import load_thresholds

P = ph.PhysicsParams()


def fleet(strings: int = 1, blocks: int = 8, load_a: float | None = None, **site):
    raw = small_fleet_raw()
    for s in raw["sites"]:
        system = s["systems"][0]
        system["strings"], system["blocks_per_string"] = strings, blocks
        system["load_a"] = load_a or system["load_a"]
        system["string_installed"] = [system["string_installed"][0]] * strings
        s.update(site)
    return parse_fleet(raw)


def quiet_site(**overrides) -> SiteSettings:
    """A site with no HVAC faults and a generator that always starts."""
    return SiteSettings(**{
        "hvac_setpoint_c": 23, "hotspot_c": 1, "hvac_degraded_per_year": 0,
        "hvac_degraded_median_hours": 1, "hvac_failed_per_year": 0,
        "hvac_failed_median_hours": 1, "generator_start_success": 1, "float_offset_v": 0,
        **overrides})


@pytest.fixture(scope="module")
def site_history():
    """A southern site (8 outages a year) in the rainy season, a heavy UPS load and a generator
    that never starts: deep outages, some longer than the battery lasts."""
    f = fleet(2, 8, load_a=100.0, region="southern", generator_start_success=0.0)
    return simulate_site(f, f.sites[0].code, Window(dt.date(2024, 6, 1), 120, 600), seed=5)


@pytest.fixture(scope="module")
def telemetry(site_history):
    return site_history.telemetry()


def life_years_at(temp_c: float) -> float:
    result = ageing.simulate_units(environment(temp_c, constant=True), units(1, life_factor=1),
                                   NO_EVENTS, (T0, T0 + 86_400), P, clock_s=86_400)
    return float((result.cross_s[0] - T0) / YEAR)


@pytest.mark.parametrize(("temp_c", "years"), [(25.0, 10.0), (33.0, 5.35), (40.0, 3.1)])
def test_simulated_life_matches_the_domain_service_life(temp_c, years):
    """DOMAIN §3: a 10-year (25 degC) block lasts ~10 y at 25, 5-5.7 at 33, 2.7-3.5 at 40 degC;
    the heat penalty is counted once (Arrhenius), not again through a field factor."""
    assert life_years_at(temp_c) == pytest.approx(years, rel=0.15)


def test_one_current_flows_through_every_block_of_a_string(telemetry):
    spread = telemetry.group_by("string_id", "ts").agg(
        spread=pl.col("current_a").max() - pl.col("current_a").min())["spread"]
    assert spread.max() < 1e-4


def test_the_charger_holds_the_string_voltage_on_float(site_history, telemetry):
    env = site_history.environment.select("ts", "room_temp_c")
    on_float = telemetry.filter(pl.col("mode") == "float").group_by("string_id", "ts").agg(
        total=pl.col("voltage_v").sum(), n=pl.len()).filter(pl.col("n") == 8).join(env, on="ts")
    # the set point follows the room through the blocks' ~40-min lag: within ~0.1 V per block
    per_block = on_float["total"] / 8 - ph.float_setpoint(on_float["room_temp_c"].to_numpy(), P)
    assert per_block.abs().median() < 0.05


def test_a_shorted_block_lifts_the_others_at_a_fixed_string_voltage():
    """DOMAIN §8: one dead cell lowers its block ~2.1 V and raises each of 23 others ~0.09 V."""
    f = fleet(1, 24)
    h = simulate_site(f, f.sites[0].code, Window(dt.date(2024, 1, 1), 60, 3600), seed=4,
                      params=ph.PhysicsParams(short_rate_per_year=3.0))
    swaps = h.maintenance_events.filter(pl.col("reason").str.starts_with("internal short"))
    assert swaps.height
    victim, swap_ts = swaps["battery_id"][0], swaps["ts"][0]
    tel = h.telemetry().filter((pl.col("mode") == "float") & (pl.col("ts") < swap_ts))
    others = tel.filter(pl.col("battery_id") != victim).group_by("ts").agg(
        v=pl.col("voltage_v").median(), n=pl.len())
    shorted = tel.filter(pl.col("battery_id") == victim).filter(
        pl.col("voltage_v") < 12.3)["ts"]
    before = others.filter(~pl.col("ts").is_in(shorted.implode()))["v"].median()
    during = others.filter(pl.col("ts").is_in(shorted.implode()))["v"].median()
    assert shorted.len() > 0
    assert during - before == pytest.approx(2.1 / 23, abs=0.04)


def test_float_current_and_the_charging_voltage_agree():
    """The set point drives exactly the nominal float current; the law's voltage sensitivity
    is DOMAIN §8's (doubling per ~80-120 mV/cell)."""
    v = ph.float_setpoint(np.array(25.0), P)
    assert ph.float_current(120.0, 25.0, v, P) == pytest.approx(0.8e-3 * 120)
    ratio = ph.float_current(120.0, 25.0, v + 0.6, P) / ph.float_current(120.0, 25.0, v, P)
    assert ratio == pytest.approx(2.0)


def test_equalize_draws_a_fraction_of_an_ampere_and_boost_sits_above_float(telemetry):
    modes = telemetry.group_by("mode").agg(v=pl.col("voltage_v").median(),
                                           i=pl.col("current_a").median())
    by = {r["mode"]: r for r in modes.iter_rows(named=True)}
    if "equalize" in by:
        assert 0.0 < by["equalize"]["i"] < 1.0
    assert by["boost"]["v"] > by["float"]["v"] + 0.2


def test_boost_returns_the_charge_it_reports():
    """Integrating the CC-CV current over a whole boost returns the deficit (over the charge
    efficiency): state of charge and current agree."""
    rated, deficit0 = 120.0, 0.6
    hours = np.linspace(0.0, float(ph.boost_hours(deficit0, P)), 20_001)
    amps = ph.boost_current(ph.boost_deficit(hours, deficit0, P), rated, P)
    returned = np.trapezoid(amps, hours) * P.charge_efficiency
    assert returned == pytest.approx(deficit0 * rated, rel=0.01)
    v = ph.boost_voltage(ph.boost_deficit(hours, deficit0, P), 25.0, P)
    assert np.all(np.diff(v) >= -1e-9) and v.max() == pytest.approx(P.boost_v_per_block)
    hot = ph.boost_voltage(np.array(0.01), 35.0, P)
    assert hot == pytest.approx(P.boost_v_per_block - 0.18)  # compensated like float


def test_capacity_depends_on_the_rate_and_ends_at_the_cutoff():
    assert 0.80 <= ph.rate_capacity_fraction(3.0, P.peukert_exponent) <= 0.85
    assert 0.55 <= ph.rate_capacity_fraction(1.0, P.peukert_exponent) <= 0.67
    amps = ph.rate_current(3.0, 120.0, P)
    reach = ph.ah_to_cutoff(120.0, amps, 0.003, 120.0, P)
    assert reach / amps == pytest.approx(3.0, rel=0.02)
    end = ph.discharge_voltage(reach, 120.0, amps, 0.003, 120.0, P)
    assert end == pytest.approx(P.cutoff_v, abs=1e-3)


def test_polarisation_does_not_scale_with_resistance_alone():
    """A high-resistance block in a 54-second, <1 %-deep outage sags by its extra I R only
    (the review saw 10.37 V)."""
    v = ph.discharge_voltage(55.0 * 54 / 3600, 120.0, 55.0, 0.011, 120.0, P)
    assert v > 11.5


def test_a_discharge_that_outlasts_the_battery_loses_the_load(site_history):
    events = site_history.discharge_events
    assert events["load_lost"].any()
    lost = events.filter(pl.col("load_lost"))
    assert (lost["runtime_minutes"] < lost["outage_minutes"]).all()
    curves = site_history.discharge_curves.join(lost.select("event_id"), on="event_id")
    last = curves.group_by("event_id").agg(v=pl.col("voltage_v").sort_by("ts").min())
    assert last["v"].max() == pytest.approx(P.cutoff_v, abs=0.05)


def test_capacity_tests_read_the_three_hour_rate():
    """Annual tests at the 3-hour rate read ~80 % of the block's C10 capacity, and say so."""
    f = fleet(1, 6)
    h = simulate_site(f, f.sites[0].code, Window(dt.date(2024, 1, 1), 400, 3600), seed=5)
    tests = h.maintenance_events.filter(pl.col("event_type") == "capacity_test")
    assert tests.height
    joined = tests.with_columns(day=pl.col("ts").dt.truncate("1d")).join(
        h.battery_truth.select("battery_id", day="ts", cap="capacity_ah"),
        on=["battery_id", "day"])
    share = (joined["measured_capacity_ah"] / joined["cap"]).median()
    assert 0.75 <= share <= 0.85
    assert (tests["test_rate_hours"] == 3.0).all()


def test_a_removed_block_no_longer_limits_its_string():
    """Two blocks on one string: the weak one is removed; later discharges are as deep as the
    remaining block allows (the review: a replaced, shorted block halved their depth)."""
    pool = units(2, life_factor=1.0)
    pool.c0_ah[:] = [120.0, 30.0]
    t = T0 + 86_400 * np.array([10.0, 40.0])
    events = ageing.Discharges(t, np.full(2, 3600.0), np.full(2, 40.0), np.zeros(2, int))
    kept = ageing.simulate_units(environment(25.0, constant=True, years=2), pool, events,
                                 (T0, T0 + 86_400), P, stop_s=T0 + YEAR,
                                 removed_s=np.array([np.inf, T0 + 20 * 86_400]))
    assert kept.discharges.ah[0] < 30.0  # the weak block ends the first discharge
    assert kept.discharges.ah[1] == pytest.approx(40.0)  # the second runs its full hour
    assert np.isnan(kept.discharges.dod[1, 1])


def test_fade_past_end_of_life_is_bounded():
    u = np.linspace(0.0, 6.0, 601)
    cap = ph.capacity_fraction(u, P)
    assert np.all(np.diff(cap) <= 0) and cap.min() >= 0.3
    loss = np.diff(ph.fade_shape(u, P))
    assert np.ptp(loss[u[1:] > 1.0]) < 1e-9  # no acceleration past end of life


def test_a_short_after_end_of_life_is_kept_in_the_state():
    """A block past end of life but still in service can short: the short shows in its state
    (capacity), is reported (so telemetry and the removal see it), and does not rewrite the
    mode that ended its life (the review: shorts were applied to filtered-out state)."""
    p = ph.PhysicsParams(short_rate_per_year=0.5)
    env = environment(25.0, constant=True, years=8)
    window = (T0 + 4 * YEAR, T0 + 4 * YEAR + 86_400)
    found = False
    for threshold in (1.0, 2.0, 4.0, 8.0, 16.0):
        pool = units(1, life_factor=0.2)
        pool.e_short[:] = threshold
        r = ageing.simulate_units(env, pool, NO_EVENTS, window, p, stop_s=window[1])
        if r.cross_s[0] < r.short_s[0] < window[0]:
            clean = units(1, life_factor=0.2)
            c = ageing.simulate_units(env, clean, NO_EVENTS, window, p, stop_s=window[1])
            assert r.capacity_ah[0, 0] == pytest.approx(c.capacity_ah[0, 0] * 5 / 6)
            assert r.end_mode[0] == ageing.CORROSION
            found = True
    assert found


def test_site_practice_replaces_on_critical_ohmic_readings_within_the_delay():
    settings = quiet_site(replacement_delay_days=20)
    rules = practice.Practice(settings, load_thresholds(), P)
    assert rules.ohmic_alarm_ratio == pytest.approx(1.5)
    pool = units(3)
    alarm = np.array([T0 + 100 * 86_400, np.inf, np.inf])
    short = np.array([np.inf, T0 + 50 * 86_400, np.inf])
    empty = ageing.DischargeOutcome(np.zeros((0, 3)), np.zeros(0), np.zeros(0),
                                    np.zeros((0, 3)), np.zeros(0, bool))
    result = ageing.AgeingResult(np.zeros(1), np.zeros((1, 3)), np.zeros((1, 3)),
                                 np.zeros((1, 3)), np.full(3, np.inf), short,
                                 np.full(3, np.inf), np.zeros(3, int), alarm, empty)
    schedule = Schedule(NO_EVENTS, np.zeros(0, int), np.zeros(0, int), [])
    removed, reasons, _ = practice.removals(pool, result, schedule, T0 + YEAR, 1,
                                            ["a", "b", "c"], 0, rules)
    assert alarm[0] < removed[0] <= alarm[0] + 21 * 86_400
    assert reasons[0] == "ohmic reading over the critical rise"
    assert short[1] < removed[1] <= short[1] + 4 * 86_400
    assert not np.isfinite(removed[2])


def test_outage_counts_match_the_configured_rate():
    region = Region(temp_offset_c=0, seasonality=1, outages_per_year=8.0,
                    outage_median_minutes=1.0)
    site = quiet_site()
    env = SiteEnvironment.draw(3, "RATE", region, site, T0, T0 + 200 * YEAR)
    n = len(env.outages[0])
    assert abs(n - 1600) < 3 * np.sqrt(1600)  # Poisson: within three standard deviations


def test_runaway_risk_rises_with_float_voltage():
    env = environment(25.0, constant=True, years=3)
    counts = []
    for offset in (0.0, 0.3):
        pool = units(2000, seed=9, failures=True)
        pool.e_short[:] = np.inf
        pool.float_v_offset[:] = offset
        r = ageing.simulate_units(env, pool, NO_EVENTS, (T0, T0 + 86_400),
                                  ph.PhysicsParams(runaway_rate_per_year=0.05),
                                  clock_s=86_400, stop_s=T0 + YEAR)
        counts.append(int(np.sum(r.runaway_s < T0 + YEAR)))
    assert counts[1] > 1.5 * counts[0] > 0


def test_bangkok_hot_season_humidity_is_near_its_normal():
    region = Region(temp_offset_c=1.5, seasonality=1, outages_per_year=0,
                    outage_median_minutes=1)
    site = quiet_site()
    env = SiteEnvironment.draw(3, "BKK", region, site, T0, T0 + YEAR)
    april = T0 + 91 * 86_400 + np.arange(30 * 24) * 3600.0
    _, rh = env.outdoor(april)
    assert 65 <= rh.mean() <= 75


def test_ohmic_readings_behave_like_a_monitors(telemetry):
    """Conductance is the reciprocal of the same reading; the reading falls with temperature
    (~1 %/degC) and rises as the block discharges; a few readings are outliers."""
    assert ((telemetry["resistance_mohm"] * telemetry["conductance_s"] - 1000.0).abs()
            < 0.01).all()
    on_float = telemetry.filter(pl.col("mode") == "float").with_columns(
        day=pl.col("ts").dt.truncate("1d"))
    # within a day a block's true resistance is fixed: the reading tracks temperature only
    d = on_float.with_columns(
        lr=pl.col("resistance_mohm").log() - pl.col("resistance_mohm").log().mean().over(
            "battery_id", "day"),
        dt=pl.col("temperature_c") - pl.col("temperature_c").mean().over("battery_id", "day"))
    slope = float(np.polyfit(d["dt"].to_numpy(), d["lr"].to_numpy(), 1)[0])
    assert slope == pytest.approx(-0.01, abs=0.003)
    dis = telemetry.filter(pl.col("mode") == "discharge")
    if dis.height:
        full = on_float.group_by("battery_id").agg(r=pl.col("resistance_mohm").median())
        deep = dis.join(full, on="battery_id").filter(pl.col("soc_pct") < 60)
        if deep.height:
            assert (deep["resistance_mohm"] / deep["r"]).median() > 1.03


def test_the_monitors_soc_is_its_own_coulomb_count(site_history, telemetry):
    """One count per string (of the string's measured current), back at 100 % on float once
    the boost has ended."""
    truth = site_history.battery_truth.select("battery_id", day="ts", cap="capacity_ah")
    rated = site_history.batteries.select("battery_id", "rated_capacity_ah")
    dis = telemetry.filter(pl.col("mode") == "discharge").with_columns(
        day=pl.col("ts").dt.truncate("1d")).join(truth, on=["battery_id", "day"]).join(
        rated, on="battery_id")
    assert dis.height
    # the counted Ah are the same for every block of a string (one current), the truth not
    per_ts = dis.group_by("string_id", "ts").agg(n=pl.col("soc_pct").n_unique())
    assert (per_ts["n"] == 1).all()
    assert (telemetry.filter(pl.col("mode") == "float")["soc_pct"] == 100.0).mean() > 0.99
