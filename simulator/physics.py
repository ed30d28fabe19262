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
    cutoff_v: float = 10.50  # end of discharge 1.75 V/cell (DOMAIN §3)
    float_current_ma_per_ah: float = 0.8  # float current ~0.5-1 mA/Ah at 25 degC (datasheets)
    polarization_factor: float = 3.0  # discharge: polarisation ~3x the ohmic drop (~0.8 V at C/2)
    tafel_v: float = 0.104  # charge overpotential slope per block: 0.6 V at float, ~1.1 V at C/10
    exchange_current_ma_per_ah: float = 0.005  # sets eta = 0.6 V at the 0.8 mA/Ah float current
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
    (VRLA fade accelerates as grid corrosion and dry-out progress). shape(1) == 1."""
    u = np.maximum(np.asarray(life_used), 0.0)
    a = p.fade_linear_share
    return a * u + (1.0 - a) * u * u


def capacity_fraction(life_used: np.ndarray, p: PhysicsParams) -> np.ndarray:
    """Capacity relative to the unit's own initial capacity; monotone non-increasing in u."""
    return np.maximum(1.0 - (1.0 - p.eol_capacity_fraction) * fade_shape(life_used, p), 0.05)


def ocv(soc_fraction: np.ndarray, p: PhysicsParams) -> np.ndarray:
    """Open-circuit block voltage, linear in state of charge (a fair fit for AGM)."""
    soc = np.clip(soc_fraction, 0.0, 1.0)
    return p.ocv_empty_v + (p.ocv_full_v - p.ocv_empty_v) * soc


def terminal_voltage(
    open_circuit_v: np.ndarray, current_a: np.ndarray, resistance_ohm: np.ndarray,
    rated_ah: np.ndarray, p: PhysicsParams,
) -> np.ndarray:
    """Terminal voltage with I > 0 for charging: V = OCV + I*R + eta. Charging raises it
    (ohmic drop plus a Tafel charge overpotential), discharging lowers it (ohmic drop plus
    polarisation). Getting this sign wrong is a known mistake of earlier systems (DOMAIN §7)."""
    i = np.asarray(current_a, dtype=np.float64)
    i0 = p.exchange_current_ma_per_ah * 1e-3 * np.asarray(rated_ah)
    charge = i * resistance_ohm + p.tafel_v * np.arcsinh(np.maximum(i, 0.0) / (2 * i0))
    discharge = i * resistance_ohm * (1.0 + p.polarization_factor)
    return open_circuit_v + np.where(i > 0, charge, discharge)


def float_current(
    rated_ah: np.ndarray, temp_c: np.ndarray, float_v: np.ndarray, p: PhysicsParams
) -> np.ndarray:
    """Float current (A): doubles per ~10 degC and per ~0.1 V/block over set point (Tafel)."""
    dev = np.asarray(float_v) - float_setpoint(temp_c, p)
    return (
        p.float_current_ma_per_ah * 1e-3 * rated_ah
        * np.exp2((np.asarray(temp_c) - p.reference_temp_c) / 10.0)
        * np.exp2(dev / 0.1)
    )


def lag_coefficient(step_s: float, tau_s: float) -> float:
    """Exact first-order-lag update weight for a sample step (time-step invariant)."""
    return float(1.0 - np.exp(-step_s / tau_s))
