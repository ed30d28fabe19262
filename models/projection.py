"""Physics projection of today's state of health and of the remaining life from the unit's
last capacity measurement and its resistance since.

Why: a capacity test (or a deep discharge) says where a unit stood, months ago, to within a
few percent; its daily ohmic readings say how far it has moved since. VRLA wear raises
resistance as it takes capacity (DOMAIN §3: +40-50 % over baseline at end of life), so with
R = R0 (1 + g f) and C = C0 (1 - 0.2 f) for the wear share f, the resistance ratio between
the measurement and today gives today's f, and the resistance rise rate gives df/dt. Trees
cannot form these ratios and inverses themselves; the model still learns how far to trust
them (the unit's own gain g is unknown: the fleet's typical gain stands in for it).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import polars as pl

from simulator import physics as ph

T = TypeVar("T", np.ndarray, pl.Expr)
MAX_PROJECTED_DAYS = 20 * 365.25  # beyond any VRLA life: a flatter slope carries no information


def wear_share(soh_pct: T, p: ph.PhysicsParams) -> T:
    """Share f of the end-of-life capacity loss a unit has used (0 new, 1 at 80 %), taking the
    rating for the unit's unknown initial capacity (+-2.5 %). NumPy arrays or Polars
    expressions."""
    f = (1.0 - soh_pct / 100.0) / (1.0 - p.eol_capacity_fraction)
    return f.clip(0.0, None) if isinstance(f, pl.Expr) else np.clip(f, 0.0, None)


def life_from_wear(f: np.ndarray) -> np.ndarray:
    """Inverse of `physics.fade_shape` (0.55 u + 0.45 u^2 = f): the life used u."""
    return (-0.55 + np.sqrt(0.55**2 + 4 * 0.45 * np.clip(f, 0.0, None))) / (2 * 0.45)


def new_resistance(soh_pct: T, r_mohm: T, p: ph.PhysicsParams) -> T:
    """The resistance the unit had when new, implied by one capacity measurement and the
    resistance at that time: R = R0 (1 + g f)."""
    return r_mohm / (1.0 + p.resistance_rise_at_eol * wear_share(soh_pct, p))


def project_health(r_new: np.ndarray, r_now: np.ndarray, r_slope_per_day: np.ndarray,
                   p: ph.PhysicsParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Today's SoH (% of rating) and the days until 80 %, projected along the fade curve at
    the current resistance rise rate (NaN where an input is missing or resistance is flat)."""
    p = p or ph.PhysicsParams()
    g = p.resistance_rise_at_eol
    with np.errstate(divide="ignore", invalid="ignore"):
        f_now = np.clip((r_now / r_new - 1.0) / g, 0.0, None)
        soh_now = 100.0 * (1.0 - (1.0 - p.eol_capacity_fraction) * f_now)
        u_now = life_from_wear(f_now)
        u_per_day = r_slope_per_day / (r_new * g) / (0.55 + 0.9 * u_now)  # df/dt over df/du
        days = np.where(u_per_day > 0, np.clip(1.0 - u_now, 0.0, None) / u_per_day, np.nan)
    return soh_now, np.clip(days, 0.0, MAX_PROJECTED_DAYS)
