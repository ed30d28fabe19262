"""The SoH/RUL projection inverts the wear laws it is given (a resistance gain and a fade
shape, fitted by models.laws), not the simulator's: for a unit that follows those laws it
recovers the true SoH and, at a steady ageing rate, the true days to 80 %; and perturbing the
simulator's physics leaves the model-side functions unchanged."""

from __future__ import annotations

import functools

import numpy as np
import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from models import derived, projection
from models.laws import MEASUREMENT_MEANS, Laws
from models.projection import (
    fade,
    life_from_wear,
    new_resistance,
    new_resistance_avg,
    project_health,
)
from simulator import physics as ph

GAIN, SHAPE = 0.6, 0.3  # deliberately not the simulator's defaults (0.45, 0.55)


def _unit(u: float, r0: float, gain: float = GAIN, a: float = SHAPE) -> tuple[float, float]:
    """SoH (% of rating, initial capacity at rating) and resistance at life used u."""
    f = float(fade(np.array(u), a))
    return 100 * (1 - 0.2 * f), r0 * (1 + gain * f)


@given(u=st.floats(0.0, 1.0), r0=st.floats(3.0, 12.0), gain=st.floats(0.1, 1.5))
def test_new_resistance_is_recovered_from_one_measurement(u, r0, gain):
    soh, r = _unit(u, r0, gain)
    assert np.isclose(new_resistance(np.array(soh), np.array(r), gain), r0, rtol=1e-9)


@given(u_meas=st.floats(0.0, 0.9), du=st.floats(0.0, 0.09), r0=st.floats(3.0, 12.0),
       u_per_day=st.floats(1e-5, 1e-3), a=st.floats(0.05, 1.0))
def test_projection_recovers_soh_and_days_to_end_of_life(u_meas, du, r0, u_per_day, a):
    u_now = u_meas + du
    soh_meas, r_meas = _unit(u_meas, r0, a=a)
    soh_now, r_now = _unit(u_now, r0, a=a)
    slope = r0 * GAIN * (a + 2 * (1 - a) * u_now) * u_per_day  # dR/dt = R0 g f'(u) du/dt
    soh, days = project_health(new_resistance(np.array([soh_meas]), np.array([r_meas]), GAIN),
                               np.array([r_now]), np.array([slope]), GAIN, a)
    assert np.isclose(soh[0], soh_now, atol=1e-6)
    expected = min((1.0 - u_now) / u_per_day, 20 * 365.25)
    assert np.isclose(days[0], expected, rtol=1e-6, atol=1e-6)


def test_averaged_new_resistance_is_the_mean_of_the_inverses():
    soh = np.array([96.0, 91.0, 88.5])
    r = np.array([3.3, 3.7, 3.9])
    one_by_one = new_resistance(soh, r, GAIN)
    means = new_resistance_avg(np.array([np.mean(1 / r)]), np.array([np.mean(soh / 100 / r)]),
                               GAIN)
    assert np.isclose(means[0], 1 / np.mean(1 / one_by_one))


def test_flat_or_missing_resistance_gives_no_projection():
    soh, days = project_health(np.array([5.0, np.nan]), np.array([5.5, 5.5]),
                               np.array([0.0, 0.001]), GAIN, SHAPE)
    assert np.isnan(days).all() and np.isnan(soh[1]) and soh[0] < 100


def test_life_from_wear_inverts_the_fade_shape():
    u = np.linspace(0, 1.5, 31)
    for a in (0.05, 0.3, 0.55, 1.0):
        assert np.allclose(life_from_wear(fade(u, a), a), u)


def test_the_model_side_physics_ignores_the_simulators_parameters(monkeypatch):
    """Derived features depend on the fitted laws only: the simulator's fade shape, wear law,
    activation energy and float current (its `PhysicsParams` defaults) may change at will."""
    rng = np.random.default_rng(3)
    n = 50
    frame = pl.DataFrame({
        "rated_capacity_ah": 120.0, "temp_mean_7d": rng.uniform(20, 35, n),
        "float_dev_30d": rng.normal(0, 0.03, n), "float_current_7d": rng.uniform(0.05, 0.3, n),
        "discharge_ah_per_v": rng.uniform(0.5, 0.9, n), "r_30d": rng.uniform(3, 5, n),
        "r_now": rng.uniform(3, 5, n), "r_slope_180d": rng.uniform(0, 1e-3, n),
        "r_slope_365d": rng.uniform(0, 1e-3, n), "capacity_test_age_days": rng.uniform(0, 300, n),
        "discharge_soh_age_days": rng.uniform(0, 300, n),
        "last_capacity_test_soh": rng.uniform(82, 100, n), "r_at_capacity_test": rng.uniform(3, 4, n),
        "r_at_discharge_soh": rng.uniform(3, 4, n),
        **{c: rng.uniform(0.2, 0.3, n) for c in MEASUREMENT_MEANS},
    })
    laws = Laws(resistance_gain=GAIN, fade_linear_share=SHAPE)
    before = derived.derive_features(frame, laws)
    perturbed = functools.partial(
        ph.PhysicsParams, fade_linear_share=0.25, resistance_wear_exponent=1.6,
        resistance_rise_at_eol=0.9, halving_interval_c=6.0, float_current_ma_per_ah=2.0)
    monkeypatch.setattr(ph, "PhysicsParams", perturbed)
    assert derived.derive_features(frame, laws).equals(before)
    for module in (projection, derived):  # and none of them keeps a handle on the physics
        assert not any(getattr(v, "__name__", "").startswith("simulator.physics")
                       for v in vars(module).values()), module.__name__
