"""Continuous-time event intervals: events are drawn as (start, end) times in seconds, never
as per-step probabilities, so what happens does not depend on the sampling interval."""

from __future__ import annotations

import numpy as np


def poisson_starts(
    rng: np.random.Generator, t0: float, t1: float, rate_per_year: float,
    weight=None, max_weight: float = 1.0,
) -> np.ndarray:
    """Event start times (s) of a Poisson process over [t0, t1). An optional `weight(t)` in
    [0, max_weight] modulates the rate (thinning), e.g. rainy-season clustering."""
    years = (t1 - t0) / (365.25 * 86400)
    n = rng.poisson(rate_per_year * max_weight * years)
    starts = np.sort(rng.uniform(t0, t1, n))
    if weight is not None and n:
        starts = starts[rng.uniform(0, max_weight, n) < weight(starts)]
    return starts


def merge(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union of possibly overlapping intervals, sorted and disjoint."""
    if len(starts) == 0:
        return np.asarray(starts, float), np.asarray(ends, float)
    order = np.argsort(starts)
    s, e = np.asarray(starts, float)[order], np.asarray(ends, float)[order]
    run_end = np.maximum.accumulate(e)
    new_run = np.r_[True, s[1:] > run_end[:-1]]
    group = np.cumsum(new_run) - 1
    out_s = s[new_run]
    out_e = np.zeros(len(out_s))
    np.maximum.at(out_e, group, e)
    return out_s, out_e


def inside(t: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """For each time, whether it lies in one of the disjoint sorted intervals [start, end)."""
    if len(starts) == 0:
        return np.zeros(np.shape(t), dtype=bool)
    i = np.searchsorted(starts, t, side="right") - 1
    return (i >= 0) & (t < ends[np.maximum(i, 0)])


def since_start(t: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Seconds since the start of the interval containing t (NaN outside every interval)."""
    if len(starts) == 0:
        return np.full(np.shape(t), np.nan)
    i = np.maximum(np.searchsorted(starts, t, side="right") - 1, 0)
    ok = (t >= starts[i]) & (t < ends[i])
    return np.where(ok, t - starts[i], np.nan)
