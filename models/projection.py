"""Physics projection of today's state of health and of the remaining life from the unit's
capacity measurements and its resistance since.

Why: a capacity test (or a deep discharge) says where a unit stood, months ago, to within a
few percent; its daily ohmic readings say how far it has moved since. VRLA wear raises
resistance as it takes capacity (DOMAIN §3: +40-50 % over baseline at end of life), so with
R = R0 (1 + g f) for the wear share f (0 new, 1 at 80 %), the resistance ratio between the
measurement and today gives today's f, and the resistance rise rate gives df/dt; along a fade
curve f = a u + (1 - a) u^2 of the life used u, df/dt says how fast u runs out. Trees cannot
form these ratios and inverses themselves; the model still learns how far to trust them.

The gain g and the fade shape a are arguments: `models.laws` fits them on the training
batteries. Nothing here reads the simulator's constants.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import polars as pl

T = TypeVar("T", np.ndarray, pl.Expr)
EOL_FRACTION = 0.80  # end of life at 80 % of rated capacity (IEEE 450 / IEEE 1188, DOMAIN §3)
LOSS_AT_EOL = 1.0 - EOL_FRACTION
MAX_PROJECTED_DAYS = 20 * 365.25  # beyond any VRLA life: a flatter slope carries no information


def wear_share(soh_pct: T) -> T:
    """Share f of the end-of-life capacity loss a unit has used (0 new, 1 at 80 %), taking the
    rating for the unit's unknown initial capacity (+-2.5 %). NumPy arrays or Polars
    expressions."""
    f = (1.0 - soh_pct / 100.0) / LOSS_AT_EOL
    return f.clip(0.0, None) if isinstance(f, pl.Expr) else np.clip(f, 0.0, None)


def fade(u: np.ndarray, a: float) -> np.ndarray:
    """Wear share after life used u on the fade curve a u + (1 - a) u^2 (a = 1: linear)."""
    return a * u + (1.0 - a) * u * u


def life_from_wear(f: np.ndarray, a: float) -> np.ndarray:
    """Inverse of `fade` on u >= 0: the life used u that has taken the wear share f (the
    quadratic's root in the form that stays exact as a approaches 1, where it is linear)."""
    f = np.clip(f, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = 2.0 * f / (a + np.sqrt(a * a + 4.0 * (1.0 - a) * f))
    return np.where(f == 0, 0.0, u)


def new_resistance(soh_pct: T, r_mohm: T, gain: float) -> T:
    """The resistance the unit had when new, implied by one capacity measurement and the
    resistance at that time: R = R0 (1 + g f)."""
    return r_mohm / (1.0 + gain * wear_share(soh_pct))


def new_resistance_avg(inv_r: np.ndarray, soh_inv_r: np.ndarray, gain: float) -> np.ndarray:
    """The new resistance averaged over several measurements as 1 / mean(1 / R0_i), from the
    means over the measurements of 1 / R_i and of SoH_i / R_i (SoH as a fraction of rating):
    1 / R0_i = (1 + g (1 - SoH_i) / 0.2) / R_i is linear in both, so the snapshot can keep the
    means before the gain is known. Unlike `new_resistance`, f is not clipped at 0, or the
    mean would not be linear."""
    k = gain / LOSS_AT_EOL
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 / (inv_r * (1.0 + k) - k * soh_inv_r)


def project_health(r_new: np.ndarray, r_now: np.ndarray, r_slope_per_day: np.ndarray,
                   gain: float, fade_linear_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Today's SoH (% of rating) and the days until 80 %, projected along the fade curve at
    the current resistance rise rate (NaN where an input is missing or resistance is flat)."""
    a = fade_linear_share
    with np.errstate(divide="ignore", invalid="ignore"):
        f_now = np.clip((r_now / r_new - 1.0) / gain, 0.0, None)
        soh_now = 100.0 * (1.0 - LOSS_AT_EOL * f_now)
        u_now = life_from_wear(f_now, a)
        u_per_day = r_slope_per_day / (r_new * gain) / (a + 2.0 * (1.0 - a) * u_now)  # df/dt / df/du
        days = np.where(u_per_day > 0, np.clip(1.0 - u_now, 0.0, None) / u_per_day, np.nan)
    return soh_now, np.clip(days, 0.0, MAX_PROJECTED_DAYS)
