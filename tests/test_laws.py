"""The laws the model fits on training batteries recover known synthetic laws (and keep their
priors without data); the datasheet-level readings (C10-equivalent capacity tests, ohmics at
25 degC on float without bad-contact days, the deep-discharge reading) do what they say, and
none of the features reads the simulator's own parameters."""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np
import polars as pl
import pytest

from models import laws as laws_module
from models.capacity import c10_soh
from models.features import snapshot_features
from models.laws import MEASUREMENT_MEANS, PRIORS, Laws, fit_laws, huber
from models.projection import fade, life_from_wear, project_health
from simulator import physics as ph

LABEL = "true_rul_days"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _training_frame(n_units: int, seed: int = 0, gain: float = 0.7,
                    coefs: tuple[float, float, float] = (0.2, 0.6, 0.3)) -> pl.DataFrame:
    """Snapshot-like rows of `n_units` units with two capacity tests a year apart each (the
    columns models.laws reads), following R = R0 (1 + gain f) and a discharge reading
    SoH = c0 + c1 x + c2 x^2, with a 2 % test error and a +-10 % spread of R0."""
    rng = np.random.default_rng(seed)
    f1 = rng.uniform(0.0, 0.7, n_units)
    f2 = f1 + rng.uniform(0.1, 0.3, n_units)
    r0 = 3.0 * (1 + 0.1 * rng.standard_normal(n_units))
    rows = []
    for k, (f, day) in enumerate(((f1, 100), (f2, 465))):
        soh = 1 - 0.2 * f
        c0, c1, c2 = coefs
        x = (-c1 + np.sqrt(c1 * c1 - 4 * c2 * (c0 - soh))) / (2 * c2)  # the reading of soh
        rows.append(pl.DataFrame({
            "battery_id": [f"b{i}" for i in range(n_units)],
            "ts": T0 + dt.timedelta(days=day + 5),
            "capacity_test_age_days": 5.2, "discharge_soh_age_days": 6.0,
            "last_capacity_test_soh": 100 * (soh + 0.02 * rng.standard_normal(n_units)),
            "r_at_capacity_test": r0 * (1 + gain * f),
            "discharge_ah_per_v": x * (1 + 0.003 * rng.standard_normal(n_units)),
            "test": k,
        }))
    return pl.concat(rows)


def test_huber_ignores_outliers():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, 500)
    y = 2.0 + 3.0 * x + 0.05 * rng.standard_normal(500)
    y[:40] += 5.0  # 8 % gross outliers
    b = huber(np.column_stack([np.ones_like(x), x]), y)
    assert b == pytest.approx([2.0, 3.0], abs=0.05)


def test_resistance_gain_is_recovered_from_pairs_of_tests():
    frame = _training_frame(400, gain=0.7)
    assert laws_module._fit_resistance_gain(frame) == pytest.approx(0.7, rel=0.1)
    assert laws_module._fit_resistance_gain(frame.head(30)) == PRIORS.resistance_gain


def test_discharge_reading_is_calibrated_on_the_tests_it_coincides_with():
    frame = _training_frame(300, coefs=(0.2, 0.6, 0.3))
    laws = Laws(discharge_soh_coefs=laws_module._fit_discharge_soh(frame))
    x = np.array([0.75, 0.82, 0.9])  # the readings of SoH 80-100 %
    assert laws.discharge_soh(x) == pytest.approx(0.2 + 0.6 * x + 0.3 * x * x, abs=0.005)
    other = frame.with_columns(discharge_soh_age_days=pl.lit(40.0))  # a later outage's reading
    assert laws_module._fit_discharge_soh(other) == PRIORS.discharge_soh_coefs


def test_healthy_float_current_is_fitted_on_young_blocks_only():
    rng = np.random.default_rng(2)
    n = 4000
    age = rng.uniform(0, 3000, n)
    temp, dev = rng.uniform(18, 38, n), rng.normal(0, 0.05, n)
    law = Laws(float_log2_ma_per_ah=np.log2(0.6))  # the datasheet's sensitivities
    dry_out = np.where(age > 1500, 1 + age / 1000, 1.0)  # old blocks draw more
    current = law.healthy_float_current(100.0, temp, dev) * dry_out * (
        1 + 0.02 * rng.standard_normal(n))
    frame = pl.DataFrame({"age_days": age, "float_current_7d": current, "temp_mean_7d": temp,
                          "float_dev_30d": dev, "rated_capacity_ah": 100.0})
    fitted = laws_module._fit_float_current(frame)
    # only the level is fitted: across the blocks of a series string the shared current
    # confounds temperature, so the sensitivities stay the datasheet's
    assert fitted == pytest.approx({"float_log2_ma_per_ah": np.log2(0.6)}, abs=0.02)


def test_fade_shape_is_the_one_the_training_lives_follow():
    """Units on the fade curve a = 0.45 at steady ageing rates: the fitted shape is 0.45,
    though a linear prior (a = 1) would project their lives too long."""
    rng = np.random.default_rng(4)
    n, gain, a = 3000, 0.5, 0.45
    u_now, u_per_day, r0 = rng.uniform(0.05, 0.95, n), rng.uniform(2e-4, 8e-4, n), 3.0
    f_now = fade(u_now, a)
    slope = r0 * gain * (a + 2 * (1 - a) * u_now) * u_per_day
    frame = pl.DataFrame({
        MEASUREMENT_MEANS[0]: 1 / r0, MEASUREMENT_MEANS[1]: 1 / r0,  # one test when new
        **{c: 0.0 for c in MEASUREMENT_MEANS[2:]},
        "r_30d": r0 * (1 + gain * f_now), "r_slope_365d": slope,
        LABEL: (1 - u_now) / u_per_day * np.exp(0.1 * rng.standard_normal(n)),
    })
    laws = Laws(resistance_gain=gain)
    assert laws_module._fit_fade_shape(frame, LABEL, laws) == pytest.approx(a, abs=0.051)
    assert np.allclose(life_from_wear(f_now, a), u_now)
    _, linear = project_health(np.full(n, r0), frame["r_30d"].to_numpy(), slope, gain, 1.0)
    assert np.median(linear / frame[LABEL].to_numpy()) > 1.1


def test_too_little_data_keeps_every_prior():
    frame = _training_frame(5).with_columns(
        age_days=100.0, float_current_7d=0.1, rated_capacity_ah=100.0, temp_mean_7d=25.0,
        float_dev_30d=0.0, r_30d=3.5, r_slope_365d=1e-4, **{LABEL: 500.0},
        **{c: 0.3 for c in MEASUREMENT_MEANS})
    assert fit_laws(frame, LABEL) == PRIORS


def test_capacity_tests_read_as_c10_equivalent():
    batteries = pl.DataFrame({"battery_id": ["a", "b"], "battery_model": "AGM12-120",
                              "rated_capacity_ah": 120.0})
    share = float(ph.rate_capacity_fraction(np.array(3.0), 1.22))  # default fleet datasheet
    tests = pl.DataFrame({"battery_id": ["a", "b"], "ts": [T0, T0],
                          "event_type": "capacity_test",
                          "measured_capacity_ah": [0.9 * 120 * share, 0.9 * 120],
                          "test_rate_hours": [3.0, None]})
    assert c10_soh(tests, batteries)["soh"].to_list() == pytest.approx([0.9, 0.9])
    old = c10_soh(tests.drop("test_rate_hours"), batteries)  # before the rate was recorded
    assert old["soh"].to_list() == pytest.approx([0.9 * share, 0.9])


def _telemetry(days: int = 40) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """One 120 Ah block, hourly: the ohmic reading falls 1 %/degC as the room swings between
    17 and 33 degC, reads 10 % high while boosting and 60 % high on a bad-contact day (20);
    a 3-hour-rate capacity test on day 30 draws 53 % of the rating with a 0.7 V drop."""
    ts = [T0 + dt.timedelta(hours=h) for h in range(24 * days)]
    hour = np.arange(len(ts))
    day = hour // 24
    temp = 25 + 8 * np.sin(2 * np.pi * hour / (24 * 9.5))
    mode = np.where((day == 12) & (hour % 24 < 6), "boost", "float").astype(object)
    soc, volts = np.full(len(ts), 100.0), np.full(len(ts), 13.5)
    current = np.full(len(ts), 0.1)
    test = (day == 30) & np.isin(hour % 24, [19, 20, 21])
    mode[test], current[test] = "discharge", -32.0
    soc[test], volts[test] = [100.0, 73.35, 46.7], [12.3, 12.0, 11.6]
    r = 4.0 * np.exp(-0.01 * (temp - 25)) * np.where(mode == "boost", 1.1, 1.0) * np.where(
        day == 20, 1.6, 1.0)
    f32 = pl.Float32
    telemetry = pl.DataFrame({
        "ts": ts, "battery_id": "b", "string_id": "S", "site_id": "X",
        "voltage_v": pl.Series(volts, dtype=f32), "current_a": pl.Series(current, dtype=f32),
        "temperature_c": pl.Series(temp, dtype=f32), "resistance_mohm": pl.Series(r, dtype=f32),
        "conductance_s": pl.Series(1000 / r, dtype=f32), "soc_pct": pl.Series(soc, dtype=f32),
        "mode": mode.tolist()})
    batteries = pl.DataFrame({"battery_id": "b", "site_id": "X", "battery_model": "AGM12-120",
                              "rated_capacity_ah": 120.0, "install_date": dt.date(2023, 1, 1)})
    share = float(ph.rate_capacity_fraction(np.array(3.0), 1.22))
    maintenance = pl.DataFrame({
        "ts": T0 + dt.timedelta(days=30, hours=19), "battery_id": "b",
        "event_type": "capacity_test", "measured_capacity_ah": 0.9 * 120 * share,
        "test_rate_hours": 3.0})
    return telemetry, batteries, maintenance


def _at(day: int) -> dt.datetime:
    return T0 + dt.timedelta(days=day)


def test_ohmics_on_float_at_25c_without_bad_contact_days():
    telemetry, batteries, maintenance = _telemetry()
    for day in (13, 21, 35):  # after the boost, right after the bad day, later
        row = snapshot_features(telemetry, batteries, maintenance, as_of=_at(day))
        assert row["r_now"].item() == pytest.approx(4.0, rel=1e-3), day
        assert row["g_now"].item() == pytest.approx(250.0, rel=1e-3), day
        assert row["r_30d"].item() == pytest.approx(4.0, rel=1e-3), day
    assert abs(row["r_slope_30d"].item()) < 1e-5  # the temperature swing is gone


def test_deep_discharge_and_capacity_test_readings():
    telemetry, batteries, maintenance = _telemetry()
    row = snapshot_features(telemetry, batteries, maintenance, as_of=_at(31))
    assert row["discharge_ah_per_v"].item() == pytest.approx(0.533 / 0.7, rel=1e-3)
    assert row["last_capacity_test_soh"].item() == pytest.approx(90.0)
    assert row["meas_test_soh_inv_r"].item() == pytest.approx(0.9 / 4.0 / 2, rel=1e-3)
    assert row["meas_inv_r"].item() == pytest.approx(1 / 4.0, rel=1e-3)


def test_features_ignore_the_simulators_parameters(monkeypatch):
    telemetry, batteries, maintenance = _telemetry()
    before = snapshot_features(telemetry, batteries, maintenance, every_days=1)
    perturbed = functools.partial(
        ph.PhysicsParams, halving_interval_c=6.0, fade_linear_share=0.25,
        resistance_wear_exponent=1.6, float_current_ma_per_ah=2.0, ocv_full_v=13.2)
    monkeypatch.setattr(ph, "PhysicsParams", perturbed)
    assert snapshot_features(telemetry, batteries, maintenance, every_days=1).equals(before)
