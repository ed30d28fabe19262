"""How the strings are operated: discharges during outages the generator does not pick up at
once, annual capacity tests, boost recharge afterwards and scheduled equalize charges."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator import physics as ph
from simulator.config import Site
from simulator.discharges import Discharges
from simulator.environment import DAY_S, YEAR_S, SiteEnvironment
from simulator.physics import PhysicsParams
from simulator.streams import stream

OUTAGE_COVERED, OUTAGE_UNCOVERED, CAPACITY_TEST = 0, 1, 2
TEST_RATE_HOURS = 3.0  # capacity test at the 3-hour rate down to 1.75 V/cell (IEEE 450)
TEST_LOCAL_HOUR = 2.0  # run at night, local time
EQUALIZE_EVERY_DAYS = 90.0  # scheduled equalize (DOMAIN §2)
EQUALIZE_HOURS = 12.0


@dataclass
class Schedule:
    discharges: Discharges
    kind: np.ndarray
    outage_idx: np.ndarray  # index into the site's outages, -1 for capacity tests
    equalize: list[tuple[np.ndarray, np.ndarray]]  # per string: equalize intervals


def build_schedule(
    env: SiteEnvironment, site: Site, strings: list[tuple[str, str, int, object]],
    loads_a: np.ndarray, rated_ah: np.ndarray, seed: int, p: PhysicsParams,
) -> Schedule:
    """Every discharge of every string over the environment's whole span."""
    rng = stream(seed, site.code, "operations")
    o_start, o_end = env.outages
    starts, durations, currents, string_idx, kind, outage_idx = [], [], [], [], [], []
    n_strings = len(strings)
    for k in range(n_strings):
        on_battery = np.where(env.generator_ok, env.pickup_s, o_end - o_start)
        starts.append(o_start)
        durations.append(on_battery)
        currents.append(np.full(len(o_start), loads_a[k]))
        string_idx.append(np.full(len(o_start), k))
        kind.append(np.where(env.generator_ok, OUTAGE_COVERED, OUTAGE_UNCOVERED))
        outage_idx.append(np.arange(len(o_start)))

    test_day = rng.uniform(0, 300)  # the site's maintenance season
    first_year = np.floor(env.t0 / YEAR_S)
    years = np.arange(first_year + 1, np.ceil(env.t1 / YEAR_S))
    local_night = (TEST_LOCAL_HOUR - 7.0) * 3600.0
    equalize = []
    eq_phase = rng.uniform(0, EQUALIZE_EVERY_DAYS * DAY_S)
    for k in range(n_strings):
        t_test = years * YEAR_S + (test_day + 2 * k) * DAY_S
        t_test = np.floor(t_test / DAY_S) * DAY_S + local_night
        starts.append(t_test)
        durations.append(np.full(len(t_test), 4.0 * 3600.0))  # the weakest block ends it
        currents.append(np.full(len(t_test), float(ph.rate_current(TEST_RATE_HOURS, rated_ah[k], p))))
        string_idx.append(np.full(len(t_test), k))
        kind.append(np.full(len(t_test), CAPACITY_TEST))
        outage_idx.append(np.full(len(t_test), -1))
        eq = np.arange(env.t0 + eq_phase, env.t1, EQUALIZE_EVERY_DAYS * DAY_S)
        equalize.append((eq, eq + EQUALIZE_HOURS * 3600.0))

    start = np.concatenate(starts)
    order = np.argsort(start, kind="stable")
    return Schedule(
        Discharges(start[order], np.concatenate(durations)[order],
                   np.concatenate(currents)[order], np.concatenate(string_idx)[order]),
        np.concatenate(kind)[order], np.concatenate(outage_idx)[order], equalize,
    )


def mode_intervals(
    schedule: Schedule, hours_on_battery: np.ndarray, ah_drawn: np.ndarray,
    string_rated_ah: np.ndarray, n_strings: int, p: PhysicsParams,
) -> list[dict[str, tuple[np.ndarray, ...]]]:
    """Per string: (start, end, current) of discharges, (start, end, deficit at the start) of
    the boosts after them, and (start, end) of equalize charges, for the telemetry.

    A boost refills the deficit (share of C10) along the charger's constant-current /
    constant-voltage profile (physics.boost_deficit) and lasts until the taper ends; an
    outage during a boost cuts it short and the next boost starts with what was left."""
    d = schedule.discharges
    out = []
    for k in range(n_strings):
        sel = np.nonzero(d.string_idx == k)[0]
        s = d.start_s[sel]
        e = s + hours_on_battery[sel] * 3600.0
        b_end, deficit0 = np.zeros(len(s)), np.zeros(len(s))
        left = 0.0  # deficit not yet refilled when the next discharge starts
        for j in range(len(s)):
            deficit0[j] = left + ah_drawn[sel[j]] / string_rated_ah[k]
            b_end[j] = e[j] + 3600.0 * float(ph.boost_hours(deficit0[j], p))
            if j + 1 < len(s) and s[j + 1] < b_end[j]:
                b_end[j] = s[j + 1]
                left = float(ph.boost_deficit((b_end[j] - e[j]) / 3600.0, deficit0[j], p))
            else:
                left = 0.0
        out.append({
            "discharge": (s, e, d.current_a[sel]),
            "boost": (e, np.maximum(b_end, e), deficit0),
            "equalize": schedule.equalize[k],
        })
    return out
