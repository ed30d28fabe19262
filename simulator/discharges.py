"""Discharges of a string and what they do to its blocks: the schedule's discharges, each
one's outcome per unit, and the cutoff search shared by the history's ageing clock and the live
run (the weakest block in service ends a discharge)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from simulator import physics as ph

if TYPE_CHECKING:
    from simulator.ageing import Units

HOUR_S = 3600.0


@dataclass
class Discharges:
    """Discharges of each string (outages and capacity tests), sorted by start time."""

    start_s: np.ndarray
    duration_s: np.ndarray  # time on battery if the battery lasts
    current_a: np.ndarray
    string_idx: np.ndarray


@dataclass
class DischargeOutcome:
    """What each discharge did to each unit on its string (NaN for other units)."""

    dod: np.ndarray  # (n_events, n_units): Ah drawn over what the unit could give at that rate
    ah: np.ndarray  # (n_events,) Ah drawn from the string (NaN: none of these units on it)
    hours: np.ndarray  # (n_events,) actual hours on battery (cut at 1.75 V/cell)
    reach_ah: np.ndarray  # (n_events, n_units) Ah each unit could deliver to 1.75 V/cell then
    load_lost: np.ndarray  # (n_events,) the string hit its cutoff before power came back

    def subset(self, keep: np.ndarray) -> DischargeOutcome:
        return DischargeOutcome(self.dod[:, keep], self.ah, self.hours, self.reach_ah[:, keep],
                                self.load_lost)


def string_discharge(cap_ah: np.ndarray, res_mohm: np.ndarray, rated_ah: np.ndarray,
                     current_a: float, wanted_ah: float, limit_ah: float,
                     p: ph.PhysicsParams) -> tuple[float, np.ndarray, np.ndarray]:
    """One discharge of a string's blocks in service: (Ah the string delivers, Ah each block
    could deliver to 1.75 V/cell, each block's depth). The weakest block in service (or the
    `limit_ah` of the string's other blocks) ends it; the history and the live run share it."""
    r_ohm = res_mohm * 1e-3
    if np.all(ph.discharge_voltage(wanted_ah, cap_ah, current_a, r_ohm, rated_ah, p) > p.cutoff_v):
        # every block outlasts it (most outages): depth against the rate's capacity
        reach = cap_ah * ph.available_fraction(current_a, rated_ah, p)
    else:
        reach = ph.ah_to_cutoff(cap_ah, current_a, r_ohm, rated_ah, p)
    ah = min(wanted_ah, float(reach.min()), limit_ah)
    with np.errstate(divide="ignore", invalid="ignore"):  # a block with nothing left
        dod = np.where(reach > 0, np.minimum(ah / reach, 1.0), 1.0)
    return ah, reach, dod



class DischargeLog:
    """Walks the discharge list in time order, recording what each one did."""

    def __init__(self, d: Discharges, n_units: int, removed_s: np.ndarray | None,
                 limit_ah: np.ndarray | None) -> None:
        self.d = d
        m = len(d.start_s)
        self.removed_s = np.full(n_units, np.inf) if removed_s is None else removed_s
        self.limit_ah = np.full(m, np.inf) if limit_ah is None else limit_ah
        self.dod = np.full((m, n_units), np.nan)
        self.reach = np.full((m, n_units), np.nan)
        self.ah = np.full(m, np.nan)
        self.hours = np.zeros(m)
        self.lost = np.zeros(m, dtype=bool)

    def restore(self, earlier: DischargeOutcome, t0: float) -> None:
        """Take an earlier run's outcomes for the discharges before `t0`."""
        k = int(np.searchsorted(self.d.start_s, t0))
        self.dod[:k], self.reach[:k] = earlier.dod[:k], earlier.reach_ah[:k]
        self.ah[:k], self.hours[:k], self.lost[:k] = earlier.ah[:k], earlier.hours[:k], \
            earlier.load_lost[:k]

    def in_range(self, t0: float, t1: float, clock_s: float):
        lo, hi = np.searchsorted(self.d.start_s, [t0, t1])
        for k in range(lo, hi):
            yield k, int((self.d.start_s[k] - t0) // clock_s)

    def apply(self, k: int, cap: np.ndarray, res_mohm: np.ndarray, units: Units,
              p: ph.PhysicsParams) -> np.ndarray:
        start = self.d.start_s[k]
        on = ((units.string_idx == self.d.string_idx[k]) & (units.install_s <= start)
              & (start < self.removed_s))
        if not on.any():
            return np.zeros(len(cap))
        current = self.d.current_a[k]
        wanted = current * self.d.duration_s[k] / HOUR_S
        ah, reach, dod_on = string_discharge(cap[on], res_mohm[on], units.rated_ah[on], current,
                                             wanted, float(self.limit_ah[k]), p)
        self.ah[k], self.hours[k] = ah, ah / current
        self.lost[k] = ah < wanted * (1 - 1e-9)
        self.reach[k, on] = reach
        dod = np.zeros(len(cap))
        dod[on] = dod_on
        self.dod[k] = np.where(on, dod, np.nan)
        return ph.cycle_damage(dod, p)

    def outcome(self) -> DischargeOutcome:
        return DischargeOutcome(self.dod, self.ah, self.hours, self.reach, self.lost)
