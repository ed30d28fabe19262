"""VRLA block physics as plain vectorised functions. Every constant cites its source
(DOMAIN.md sections summarise IEEE 1188/450, Eurobat and datasheet figures) or says why."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOLTZMANN_EV = 8.617333e-5  # eV/K
KELVIN = 273.15
HOURS_PER_YEAR = 8766.0  # 365.25 days


@dataclass(frozen=True)
class PhysicsParams:
    """Ageing and electrical parameters of a 12 V AGM monobloc (6 cells)."""

    # Design life is the label's float life to 80 % at 25 degC (IEEE basis, DOMAIN §3), and heat
    # shortens it through Arrhenius alone: no extra field factor on top, which would count the
    # heat penalty twice. This reproduces DOMAIN §3: 10 y at 25, ~5.2 y at 33, ~2.9 y at 40 degC.
    reference_temp_c: float = 25.0  # IEEE/datasheet design-life rating temperature (DOMAIN §3)
    halving_interval_c: float = 8.5  # life halves per 8-10 degC above 25 (IEEE 1188 8, datasheets 10)
    life_spread_sigma: float = 0.18  # log-normal spread of the hidden life factor (field scatter)
    eol_capacity_fraction: float = 0.80  # end of life at 80 % of rating (IEEE 450 / 1188)
    # Fade shape a*u + (1-a)*u^2 of the life used u: slow early, faster at the knee (grid
    # corrosion and dry-out accelerate); a is perturbed by the model-mismatch benchmark.
    fade_linear_share: float = 0.55
    # Resistance over new follows R = R0 (1 + g f^k) of the fade share f (k = 1: linear in the
    # capacity lost); another k is "another resistance-versus-wear law" for the mismatch test.
    resistance_wear_exponent: float = 1.0
    measurement_noise_scale: float = 1.0  # multiplies every monitor error (mismatch benchmark)
    capacity_spread: float = 0.025  # +-2.5 % (1 sigma) at manufacture (DOMAIN §1)
    resistance_spread: float = 0.10  # +-10 % internal resistance at manufacture (DOMAIN §1)
    resistance_rise_at_eol: float = 0.45  # +40-50 % over baseline near replacement (DOMAIN §3)
    float_v_per_block: float = 13.50  # 2.25 V/cell x 6 at 25 degC (DOMAIN §3)
    float_comp_v_per_c: float = -0.018  # -3 mV/degC/cell x 6 cells (DOMAIN §3)
    float_comp_min_c: float = 5.0  # compensation clamped outside ~5-40 degC (DOMAIN §3)
    float_comp_max_c: float = 40.0
    float_doubling_v: float = 0.24  # +40 mV/cell over float roughly doubles grid corrosion (datasheets)
    sulfation_v: float = 0.12  # below the band (13.38 V = 13.50 - 0.12): sulfation sets in
    cycle_life_full_dod: float = 200.0  # ~200 cycles at 100 % DoD (typical AGM curve, DOMAIN §3)
    cycle_life_exponent: float = 1.45  # fits ~500 @ 50 % and ~1,150 @ 30 % DoD (DOMAIN §3)
    ocv_full_v: float = 12.90  # 2.15 V/cell open circuit when full (typical AGM)
    ocv_empty_v: float = 11.70  # 1.95 V/cell at 0 % SoC (typical AGM)
    cutoff_v: float = 10.50  # end of discharge 1.75 V/cell (DOMAIN §3, §8)
    float_current_ma_per_ah: float = 0.8  # float current ~0.5-1 mA/Ah at 25 degC (DOMAIN §8)
    float_current_doubling_c: float = 10.0  # float current doubles per ~8-10 degC (DOMAIN §8)
    # Float current doubles per ~80-120 mV/cell of over-voltage (DOMAIN §8): 0.1 V x 6 cells.
    # The same law gives the voltage a full block needs to carry a current (charging at full
    # charge), so the float current at the set point is exactly the nominal one.
    float_current_doubling_v: float = 0.6
    boost_v_per_block: float = 14.1  # 2.35 V/cell, temperature-compensated like float (DOMAIN §8)
    equalize_v_per_block: float = 14.1  # ~14.1 V per block (DOMAIN §2), compensated likewise
    boost_current_c: float = 0.1  # constant current <= 0.1-0.25 C (DOMAIN §8): C/10
    # At C/10 the voltage reaches the 2.35 V/cell limit near 85 % SoC (typical AGM charge
    # curves); from there the current tapers as the charge deficit shrinks (constant voltage).
    boost_acceptance_soc: float = 0.85
    boost_start_v: float = 13.2  # ~2.2 V/cell at the start of a C/10 charge from empty (datasheets)
    charge_efficiency: float = 0.95  # VRLA needs ~105 % of the Ah taken out back (datasheets)
    boost_end_deficit: float = 0.002  # back to float when the taper is ~2x float (DOMAIN §8)
    # Rate-dependent capacity (Peukert): (t/10 h)^((k-1)/k) of C10 in a discharge lasting t
    # hours; k = 1.22 gives 80.5 % at the 3-h and 66 % at the 1-h rate (DOMAIN §8: 75-85 / 55-65).
    peukert_exponent: float = 1.22
    # Discharge voltage = OCV - I R - activation drop - a knee that reaches the 1.75 V/cell
    # cutoff when the rate's capacity is used: the drop depends on the current density (I/C),
    # not on resistance, so a high-resistance block sags by its extra I R only.
    activation_v_per_decade: float = 0.3  # ~0.25 V at C/10, ~0.4 V at C/3 per block (datasheets)
    knee_exponent: float = 6.0  # the curve stays flat, then falls steeply near the end (datasheets)
    reference_r_ohm_ah: float = 0.36  # new R x C10: 3.0 mOhm x 120 Ah = 3.6 x 100 (DOMAIN §1)
    block_thermal_tau_min: float = 40.0  # block lags room by minutes to an hour (DOMAIN §2)
    short_rate_per_year: float = 0.002  # internal shorts per unit-year when new (defects, age)
    short_wear_gain: float = 8.0  # x(1 + 8 u^2): shorts concentrate late in life (DOMAIN §3)
    runaway_rate_per_year: float = 0.0004  # thermal runaway per unit-year at 25 degC (rare)
    runaway_dryout_gain: float = 4.0  # dry-out raises runaway risk (DOMAIN §3 table)

    @property
    def activation_energy_ev(self) -> float:
        """Arrhenius activation energy that halves life `halving_interval_c` above reference."""
        t_ref = self.reference_temp_c + KELVIN
        t_hot = t_ref + self.halving_interval_c
        return np.log(2.0) * BOLTZMANN_EV / (1.0 / t_ref - 1.0 / t_hot)


def arrhenius_factor(temp_c: np.ndarray, p: PhysicsParams) -> np.ndarray:
    """Ageing speed relative to the reference temperature (1.0 at 25 degC)."""
    t = np.asarray(temp_c, dtype=np.float64) + KELVIN
    t_ref = p.reference_temp_c + KELVIN
    return np.exp(p.activation_energy_ev / BOLTZMANN_EV * (1.0 / t_ref - 1.0 / t))


def float_setpoint(temp_c: np.ndarray, p: PhysicsParams) -> np.ndarray:
    """Temperature-compensated float voltage per block (charger set point)."""
    t = np.clip(temp_c, p.float_comp_min_c, p.float_comp_max_c)
    return p.float_v_per_block + p.float_comp_v_per_c * (t - p.reference_temp_c)


def float_stress_factor(float_v: np.ndarray, temp_c: np.ndarray, p: PhysicsParams) -> np.ndarray:
    """Extra ageing from float voltage away from the compensated set point: corrosion above,
    sulfation below the band. 1.0 inside the band's centre."""
    dev = np.asarray(float_v) - float_setpoint(temp_c, p)
    corrosion = np.exp2(np.maximum(dev, 0.0) / p.float_doubling_v)
    sulfation = 1.0 + 1.5 * np.maximum(-dev - p.sulfation_v / 2, 0.0) / p.sulfation_v
    return corrosion * sulfation


def cycle_damage(depth_of_discharge: np.ndarray, p: PhysicsParams) -> np.ndarray:
    """Share of life one discharge consumes: 1 / N(DoD), N = N100 * DoD^-k."""
    dod = np.clip(np.asarray(depth_of_discharge, dtype=np.float64), 0.0, 1.0)
    return np.where(dod > 0, dod**p.cycle_life_exponent / p.cycle_life_full_dod, 0.0)


def fade_shape(life_used: np.ndarray, p: PhysicsParams) -> np.ndarray:
    """Capacity loss as a share of the loss at end of life: slow early, faster near the knee
    (VRLA fade accelerates as grid corrosion and dry-out progress). shape(1) == 1; past end of
    life the loss goes on at the end-of-life pace instead of accelerating without bound."""
    u = np.maximum(np.asarray(life_used, dtype=np.float64), 0.0)
    a = p.fade_linear_share
    v = np.minimum(u, 1.0)
    return a * v + (1.0 - a) * v * v + (2.0 - a) * (u - v)  # on the tangent at u = 1 beyond


# A worn block keeps some capacity until it fails open; the floor keeps the state physical.
MIN_CAPACITY_FRACTION = 0.3


def capacity_fraction(life_used: np.ndarray, p: PhysicsParams) -> np.ndarray:
    """Capacity relative to the unit's own initial capacity; monotone non-increasing in u."""
    loss = (1.0 - p.eol_capacity_fraction) * fade_shape(life_used, p)
    return np.maximum(1.0 - loss, MIN_CAPACITY_FRACTION)


def ocv(soc_fraction: np.ndarray, p: PhysicsParams) -> np.ndarray:
    """Open-circuit block voltage, linear in state of charge (a fair fit for AGM)."""
    soc = np.clip(soc_fraction, 0.0, 1.0)
    return p.ocv_empty_v + (p.ocv_full_v - p.ocv_empty_v) * soc


def float_current(
    rated_ah: np.ndarray, temp_c: np.ndarray, float_v: np.ndarray, p: PhysicsParams
) -> np.ndarray:
    """Current (A) a full block draws at `float_v`: nominal at the compensated set point,
    doubling per `float_current_doubling_c` and per `float_current_doubling_v` over it."""
    dev = np.asarray(float_v) - float_setpoint(temp_c, p)
    return (
        p.float_current_ma_per_ah * 1e-3 * np.asarray(rated_ah)
        * np.exp2((np.asarray(temp_c) - p.reference_temp_c) / p.float_current_doubling_c)
        * np.exp2(dev / p.float_current_doubling_v)
    )


def rate_capacity_fraction(hours: np.ndarray, peukert_exponent: float) -> np.ndarray:
    """Share of the C10 capacity a discharge lasting `hours` delivers (Peukert), at most 1."""
    k = peukert_exponent
    return np.minimum((np.asarray(hours, dtype=np.float64) / 10.0) ** ((k - 1.0) / k), 1.0)


def available_fraction(current_a: np.ndarray, c10_ah: np.ndarray, p: PhysicsParams) -> np.ndarray:
    """Share of the C10 capacity available at a constant discharge current (Peukert)."""
    x = np.maximum(np.asarray(current_a, dtype=np.float64), 1e-9) / (np.asarray(c10_ah) / 10.0)
    return np.minimum(x ** (1.0 - p.peukert_exponent), 1.0)


def rate_current(hours: float, rated_ah: np.ndarray, p: PhysicsParams) -> np.ndarray:
    """Constant current that empties a new block of `rated_ah` (C10) in `hours` (the
    "3-hour rate" of a capacity test)."""
    return np.asarray(rated_ah) * rate_capacity_fraction(hours, p.peukert_exponent) / hours


def _activation_drop(current_a, rated_ah, p: PhysicsParams):
    return p.activation_v_per_decade * np.log10(1.0 + np.asarray(current_a) / (0.02 * rated_ah))


def _knee_height(current_a, rated_ah, p: PhysicsParams):
    """Knee that brings a block of reference resistance to the cutoff as the rate's capacity
    runs out."""
    f = available_fraction(current_a, rated_ah, p)
    plateau_end = (ocv(1.0 - f, p) - current_a * p.reference_r_ohm_ah / rated_ah
                   - _activation_drop(current_a, rated_ah, p))
    return np.maximum(plateau_end - p.cutoff_v, 0.0)


def discharge_voltage(
    drawn_ah: np.ndarray, capacity_ah: np.ndarray, current_a: np.ndarray,
    resistance_ohm: np.ndarray, rated_ah: np.ndarray, p: PhysicsParams,
) -> np.ndarray:
    """Block voltage after `drawn_ah` at a constant discharge current (A, positive) for a block
    of true C10 capacity `capacity_ah`: V = OCV(SoC) - I R - activation drop - knee. The sign
    matters (DOMAIN §7): discharging always lowers the voltage below the open circuit."""
    i = np.asarray(current_a, dtype=np.float64)
    soc = 1.0 - np.asarray(drawn_ah) / capacity_ah
    used = np.asarray(drawn_ah) / (capacity_ah * available_fraction(i, rated_ah, p))
    return (ocv(soc, p) - i * resistance_ohm - _activation_drop(i, rated_ah, p)
            - _knee_height(i, rated_ah, p) * np.clip(used, 0.0, 1.5) ** p.knee_exponent)


def ah_to_cutoff(
    capacity_ah: np.ndarray, current_a: np.ndarray, resistance_ohm: np.ndarray,
    rated_ah: np.ndarray, p: PhysicsParams,
) -> np.ndarray:
    """Ah a block delivers at a constant current before it reaches the 1.75 V/cell cutoff
    (bisection on `discharge_voltage`, which falls monotonically with the Ah drawn)."""
    cap = np.asarray(capacity_ah, dtype=np.float64)
    lo, hi = np.zeros_like(cap), cap.copy()
    for _ in range(30):  # to within 1e-9 of the capacity
        mid = 0.5 * (lo + hi)
        above = discharge_voltage(mid, cap, current_a, resistance_ohm, rated_ah, p) > p.cutoff_v
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return lo


def wear_for_fade(fade: np.ndarray, p: PhysicsParams) -> np.ndarray:
    """Inverse of `fade_shape`: the life used at which the fade share reaches `fade`."""
    f = np.maximum(np.asarray(fade, dtype=np.float64), 0.0)
    a = p.fade_linear_share
    before = (-a + np.sqrt(a * a + 4.0 * (1.0 - a) * np.minimum(f, 1.0))) / (2.0 * (1.0 - a))
    return np.where(f <= 1.0, before, 1.0 + (f - 1.0) / (2.0 - a))


def boost_deficit(hours: np.ndarray, deficit0: np.ndarray, p: PhysicsParams) -> np.ndarray:
    """Charge deficit (share of C10) `hours` into a boost that started `deficit0` short:
    constant current C/10 down to the acceptance point, then an exponential taper at constant
    voltage (the current the block accepts is proportional to what it lacks)."""
    d_cv = 1.0 - p.boost_acceptance_soc
    rate = p.boost_current_c * p.charge_efficiency  # deficit removed per hour at constant current
    t_cc = np.maximum(deficit0 - d_cv, 0.0) / rate
    tau = d_cv / rate
    cc = deficit0 - rate * hours
    cv = np.minimum(deficit0, d_cv) * np.exp(-np.maximum(hours - t_cc, 0.0) / tau)
    return np.where(hours < t_cc, cc, cv)


def boost_hours(deficit0: np.ndarray, p: PhysicsParams) -> np.ndarray:
    """How long a boost lasts: until the taper has brought the deficit to `boost_end_deficit`."""
    d_cv = 1.0 - p.boost_acceptance_soc
    rate = p.boost_current_c * p.charge_efficiency
    d0 = np.maximum(np.asarray(deficit0, dtype=np.float64), p.boost_end_deficit)
    t_cc = np.maximum(d0 - d_cv, 0.0) / rate
    return t_cc + d_cv / rate * np.log(np.minimum(d0, d_cv) / p.boost_end_deficit)


def boost_current(deficit: np.ndarray, rated_ah: np.ndarray, p: PhysicsParams) -> np.ndarray:
    """Charging current (A) at a given deficit: C/10 above the acceptance point, proportional
    to the deficit below it (constant voltage)."""
    d_cv = 1.0 - p.boost_acceptance_soc
    share = np.clip(np.asarray(deficit) / d_cv, 0.0, 1.0)
    return p.boost_current_c * np.asarray(rated_ah) * share


def boost_voltage(deficit: np.ndarray, temp_c: np.ndarray, p: PhysicsParams) -> np.ndarray:
    """Block voltage during a boost: rising along the constant-current curve to the
    temperature-compensated limit, then held there (constant voltage)."""
    limit = p.boost_v_per_block + p.float_comp_v_per_c * (
        np.clip(temp_c, p.float_comp_min_c, p.float_comp_max_c) - p.reference_temp_c)
    d_cv = 1.0 - p.boost_acceptance_soc
    progress = np.clip((1.0 - np.asarray(deficit)) / (1.0 - d_cv), 0.0, 1.0)
    start = p.boost_start_v + (limit - p.boost_v_per_block)
    return np.where(np.asarray(deficit) > d_cv, start + (limit - start) * progress, limit)


def lag_coefficient(step_s: float, tau_s: float) -> float:
    """Exact first-order-lag update weight for a sample step (time-step invariant)."""
    return float(1.0 - np.exp(-step_s / tau_s))
