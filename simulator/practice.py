"""A maintained site's practice: capacity-test readings, and when and why it replaces a block
(failed test, critical ohmic reading, detected short or runaway), from the fleet config's
delays and the one threshold config."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator import ageing, operations
from simulator import physics as ph
from simulator.config import SiteSettings
from simulator.environment import DAY_S
from simulator.streams import stream
from simulator.thresholds import Thresholds

CAPACITY_TEST_ERROR = 0.02  # capacity tests measure within a few percent (DOMAIN §4)


def removed_block_limited_a_discharge(result: ageing.AgeingResult,
                                       schedule: operations.Schedule,
                                       removed_s: np.ndarray) -> bool:
    """Whether a block, after its removal, was the one that ended a discharge in this run
    (only then does taking it out of its string change anything)."""
    after = schedule.discharges.start_s[:, None] >= removed_s[None, :]
    with np.errstate(invalid="ignore"):
        return bool(np.any(after & (result.discharges.dod >= 1.0 - 1e-9)))


@dataclass(frozen=True)
class Practice:
    """How a site's maintenance acts on what it finds (fleet config and threshold config)."""

    settings: SiteSettings
    thresholds: Thresholds
    p: ph.PhysicsParams

    @property
    def ohmic_alarm_ratio(self) -> float:
        """Resistance over new at which the site replaces a block: the critical rise of the
        one threshold config (DOMAIN §5: +50 % over baseline)."""
        return 1.0 + self.thresholds.resistance.critical_rise_pct / 100.0

    @property
    def test_pass_ah_share(self) -> float:
        """A capacity test at the 3-hour rate passes above 80 % of what the rating gives at
        that rate (IEEE 450: capacity corrected for the test rate)."""
        return self.p.eol_capacity_fraction * float(ph.rate_capacity_fraction(
            operations.TEST_RATE_HOURS, self.p.peukert_exponent))


def capacity_tests(units, result: ageing.AgeingResult, schedule: operations.Schedule, w1: float,
           seed: int, ids: list[str], gen: int, p: ph.PhysicsParams):
    """Capacity-test readings: the Ah each block delivered at the 3-hour rate down to 1.75
    V/cell, with the test's few-percent error (DOMAIN §4)."""
    rng = stream(seed, ids[0] if ids else "", "capacity_tests", gen)
    d = schedule.discharges
    tests = np.nonzero((schedule.kind == operations.CAPACITY_TEST) & (d.start_s < w1))[0]
    error = CAPACITY_TEST_ERROR * p.measurement_noise_scale
    measured = result.discharges.reach_ah[tests] * (
        1 + error * rng.standard_normal((len(tests), len(units))))
    return tests, measured


def removals(units, result: ageing.AgeingResult, schedule: operations.Schedule,
              w1: float, seed: int, ids: list[str], gen: int, practice: Practice):
    """When each unit leaves service before the window closes, and why, as a maintained site
    decides it: a failed capacity test or an ohmic reading over the critical rise leads to a
    replacement within the site's configured delay; a detected failure (an internal short's
    voltage drop, a thermal runaway) to an emergency swap within days. Decisions before the
    window count too, so the units found in service when it opens are the ones a maintained
    fleet would have."""
    n = len(units)
    rng = stream(seed, ids[0] if ids else "", "removals", gen)
    removed = np.full(n, np.inf)
    reasons = np.full(n, "", dtype=object)
    d = schedule.discharges
    cfg = practice.settings
    tests, measured = capacity_tests(units, result, schedule, w1, seed, ids, gen, practice.p)
    delay = (0.25 * cfg.replacement_delay_days, cfg.replacement_delay_days)
    urgent = (0.25 * cfg.emergency_replacement_days, cfg.emergency_replacement_days)
    for row, k in enumerate(tests):
        failed = (measured[row] < practice.test_pass_ah_share * units.rated_ah)
        failed &= ~np.isfinite(removed) & (d.start_s[k] >= units.install_s)
        removed[failed] = d.start_s[k] + DAY_S * rng.uniform(*delay, n)[failed]
        reasons[failed] = "capacity test below 80 % of rating"
    for when, window, why in (
        (result.ohmic_alarm_s, delay, "ohmic reading over the critical rise"),
        (result.short_s, urgent, "internal short: block voltage dropped"),
        (result.runaway_s + ageing.RUNAWAY_COLLAPSE_S / 2, urgent, "thermal runaway"),
    ):
        t_rm = when + DAY_S * rng.uniform(*window, n)
        sooner = t_rm < removed
        removed[sooner], reasons[sooner] = t_rm[sooner], why
    removed = np.where((removed < w1) & (removed > units.install_s), removed, np.inf)
    removed = np.ceil(removed / DAY_S) * DAY_S  # swaps happen at a day boundary
    reasons[~np.isfinite(removed)] = ""
    return removed, reasons, (tests, measured)
