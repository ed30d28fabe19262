"""The SoH/RUL projection inverts the simulator's own wear laws: given a unit whose resistance
gain is the fleet's typical one, it recovers the true SoH and, at a steady ageing rate, the
true days to 80 %."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from models.projection import life_from_wear, new_resistance, project_health
from simulator import physics as ph

P = ph.PhysicsParams()
G = P.resistance_rise_at_eol


def _unit(u: float, r0: float) -> tuple[float, float]:
    """SoH (% of rating, initial capacity at rating) and resistance at life used u."""
    f = float(ph.fade_shape(np.array(u), P))
    return 100 * float(ph.capacity_fraction(np.array(u), P)), r0 * (1 + G * f)


@given(u=st.floats(0.0, 1.0), r0=st.floats(3.0, 12.0))
def test_new_resistance_is_recovered_from_one_measurement(u, r0):
    soh, r = _unit(u, r0)
    assert np.isclose(new_resistance(np.array(soh), np.array(r), P), r0, rtol=1e-9)


@given(u_meas=st.floats(0.0, 0.9), du=st.floats(0.0, 0.09), r0=st.floats(3.0, 12.0),
       u_per_day=st.floats(1e-5, 1e-3))
def test_projection_recovers_soh_and_days_to_end_of_life(u_meas, du, r0, u_per_day):
    u_now = u_meas + du
    soh_meas, r_meas = _unit(u_meas, r0)
    soh_now, r_now = _unit(u_now, r0)
    slope = r0 * G * float(0.55 + 0.9 * u_now) * u_per_day  # dR/dt = R0 g f'(u) du/dt
    soh, days = project_health(new_resistance(np.array([soh_meas]), np.array([r_meas]), P),
                               np.array([r_now]), np.array([slope]), P)
    assert np.isclose(soh[0], soh_now, atol=1e-6)
    expected = min((1.0 - u_now) / u_per_day, 20 * 365.25)
    assert np.isclose(days[0], expected, rtol=1e-6, atol=1e-6)


def test_flat_or_missing_resistance_gives_no_projection():
    soh, days = project_health(np.array([5.0, np.nan]), np.array([5.5, 5.5]),
                               np.array([0.0, 0.001]), P)
    assert np.isnan(days).all() and np.isnan(soh[1]) and soh[0] < 100


def test_life_from_wear_inverts_the_fade_shape():
    u = np.linspace(0, 1.5, 31)
    assert np.allclose(life_from_wear(ph.fade_shape(u, P)), u)
