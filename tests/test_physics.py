"""Property tests of the VRLA physics: the claims of DOMAIN.md §3 the simulator must honour."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import ageing
from simulator import physics as ph
from simulator.config import Region, SiteSettings
from simulator.environment import SiteEnvironment

P = ph.PhysicsParams()
T0 = 1_704_067_200.0  # 2024-01-01 UTC
YEAR = 365.25 * 86_400
NO_EVENTS = ageing.Discharges(np.array([]), np.array([]), np.array([]), np.array([], int))


def environment(setpoint_c: float, *, constant: bool, seed: int = 1, years: float = 40):
    """A site whose room sits exactly at the set point (`constant`: outdoor far colder, no
    HVAC faults) or a real Bangkok-like site with faults and weather."""
    region = Region(temp_offset_c=-40.0 if constant else 1.5, seasonality=1.0,
                    outages_per_year=0.0 if constant else 2.0, outage_median_minutes=30.0)
    site = SiteSettings(
        hvac_setpoint_c=setpoint_c, hotspot_c=0.0,
        hvac_degraded_per_year=0.0 if constant else 3.0, hvac_degraded_median_hours=24.0,
        hvac_failed_per_year=0.0 if constant else 1.0, hvac_failed_median_hours=4.0,
        generator_start_success=0.97, float_offset_v=0.0,
    )
    return SiteEnvironment.draw(seed, "TEST", region, site, T0 - 2 * 86_400, T0 + years * YEAR)


def units(n: int, *, seed: int = 0, life_factor: float | None = None,
          failures: bool = False) -> ageing.Units:
    rng = np.random.default_rng(seed)
    return ageing.Units(
        string_idx=np.zeros(n, int), install_s=np.full(n, T0), rated_ah=np.full(n, 120.0),
        design_life_y=np.full(n, 10.0), c0_ah=np.full(n, 120.0), r0_mohm=np.full(n, 3.0),
        life_factor=np.full(n, life_factor) if life_factor else rng.lognormal(0, 0.18, n),
        r_growth=np.full(n, 0.45), hotspot_c=np.zeros(n), float_v_offset=np.zeros(n),
        wear_mode=np.zeros(n, np.int8),
        e_short=rng.exponential(size=n) if failures else np.full(n, np.inf),
        e_runaway=rng.exponential(size=n) if failures else np.full(n, np.inf),
    )


def life_years(setpoint_c: float) -> float:
    result = ageing.simulate_units(environment(setpoint_c, constant=True), units(1, life_factor=1),
                                   NO_EVENTS, (T0, T0 + 86_400), P, clock_s=86_400)
    return float((result.cross_s[0] - T0) / YEAR)


@settings(max_examples=8, deadline=None)
@given(st.floats(min_value=20.0, max_value=30.0))
def test_life_halves_every_8_to_10_degrees(base_c):
    """Hotter means faster fade, at the configured halving interval (+-15 %)."""
    cool, hot = life_years(base_c), life_years(base_c + 10.0)
    assert hot < cool
    halving_c = 10.0 * np.log(2) / np.log(cool / hot)
    assert 0.85 * 8.0 <= halving_c <= 1.15 * 10.0
    assert halving_c == pytest.approx(P.halving_interval_c, rel=0.15)


def test_state_of_health_after_a_year_is_time_step_invariant():
    """Same weather, faults and units: SoH after one year within 0.5 % at 1 min, 1 h, 1 d."""
    env = environment(24.0, constant=False, seed=7, years=2)
    pool = units(12, seed=3)
    soh = {}
    for clock in (60.0, 3600.0, 86_400.0):
        result = ageing.simulate_units(env, pool, NO_EVENTS, (T0 + YEAR, T0 + YEAR + 86_400),
                                       P, clock_s=clock, stop_s=T0 + YEAR + 86_400)
        soh[clock] = 100 * result.capacity_ah[0] / pool.rated_ah
    assert np.all(soh[3600.0] < 100.0)  # a year in Thai heat leaves a mark
    assert np.max(np.abs(soh[60.0] - soh[3600.0])) < 0.5
    assert np.max(np.abs(soh[86_400.0] - soh[3600.0])) < 0.5


def test_random_failure_counts_do_not_depend_on_the_step():
    """Failures are hazard rates per unit-year, not per-step probabilities (DOMAIN §7)."""
    hot = ph.PhysicsParams(short_rate_per_year=0.3, runaway_rate_per_year=0.1)
    env = environment(24.0, constant=False, seed=11, years=3)
    pool = units(400, seed=5, failures=True)
    counts = {}
    for clock in (900.0, 3600.0, 86_400.0):
        r = ageing.simulate_units(env, pool, NO_EVENTS, (T0, T0 + 86_400), hot, clock_s=clock,
                                  stop_s=T0 + 2 * YEAR)
        counts[clock] = int(np.sum(r.short_s < T0 + 2 * YEAR) + np.sum(r.runaway_s < T0 + 2 * YEAR))
    expected = 400 * (1 - np.exp(-(0.3 + 0.1) * 2))  # rough: wear and heat add a little
    assert counts[900.0] > 0.8 * expected
    spread = max(counts.values()) - min(counts.values())
    assert spread <= 0.03 * counts[3600.0] + 2, counts


@settings(max_examples=30, deadline=None)
@given(st.floats(0.0, 3.0), st.floats(0.0, 3.0))
def test_capacity_never_rises_with_use(u, extra):
    assert ph.capacity_fraction(u + extra, P) <= ph.capacity_fraction(u, P)


@settings(max_examples=50, deadline=None)
@given(st.floats(0.05, 1.0), st.floats(0.5, 60.0), st.floats(0.002, 0.02),
       st.sampled_from([100.0, 120.0]))
def test_charging_raises_and_discharging_lowers_terminal_voltage(soc, amps, r_ohm, rated):
    """Sign check (DOMAIN §7): a discharge sags below the open circuit, a boost sits above it."""
    open_circuit = ph.ocv(soc, P)
    drawn = (1.0 - soc) * rated * 0.5
    assert ph.discharge_voltage(drawn, rated, amps, r_ohm, rated, P) < ph.ocv(
        1.0 - drawn / rated, P)
    assert ph.boost_voltage(1.0 - soc, 25.0, P) > open_circuit


def test_healthy_block_floats_in_band_at_25c():
    v = ph.float_setpoint(np.array(25.0), P)
    assert 13.38 <= v <= 13.80
    # the float current that set point drives is the datasheet's ~0.5-1 mA/Ah
    i = ph.float_current(120.0, 25.0, v, P)
    assert 0.06 <= i <= 0.12
    # compensation: -18 mV/degC per block, clamped outside 5-40 degC
    assert ph.float_setpoint(np.array(35.0), P) == pytest.approx(v - 0.18)
    assert ph.float_setpoint(np.array(50.0), P) == ph.float_setpoint(np.array(40.0), P)


def test_arrhenius_matches_domain_figures():
    """A 10-year battery lasts ~5-5.7 y at 33 degC and ~2.7-3.5 y at 40 degC (DOMAIN §3)."""
    assert 10 / ph.arrhenius_factor(33.0, P) == pytest.approx(5.35, abs=0.5)
    assert 10 / ph.arrhenius_factor(40.0, P) == pytest.approx(3.1, abs=0.45)
    assert 0.55 <= P.activation_energy_ev <= 0.68


def test_cycle_life_follows_the_agm_curve():
    for dod, cycles in ((1.0, 200), (0.5, 500), (0.3, 1200)):
        assert 1 / ph.cycle_damage(dod, P) == pytest.approx(cycles, rel=0.1)
