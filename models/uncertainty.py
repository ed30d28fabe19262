"""Bootstrap confidence intervals of the headline metrics, resampling whole strings.

Weekly snapshots of one battery are near copies, and the batteries of one string share a room,
a charger and their discharges, so rows are far from independent; and only a score of test
strings carry the short-RUL bins. Resampling rows would make the intervals look much tighter
than the evidence is. Every metric here is a ratio of per-row sums over a row mask (an MAE or a
coverage), so each string is reduced once to its sums and counts, and a replicate is a
weighted sum of those: a (B x strings) matrix of multinomial draw counts times two vectors.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from models.dataset import LABEL

RESAMPLES = 1000
LEVEL = 0.90  # two-sided percentile interval
PREFIX = "ci"


def _bins(y: np.ndarray) -> dict[str, np.ndarray]:
    """The row masks of the zero-free MAE slices (as in models.metrics) and of all rows."""
    return {"mae_bin_0_90": (y > 0) & (y <= 90), "mae_bin_90_180": (y > 90) & (y <= 180),
            "mae_0_180": (y > 0) & (y <= 180), "mae_0_365": (y > 0) & (y <= 365),
            "mae": np.ones(y.size, dtype=bool)}


def _ratio(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counts > 0, sums / np.where(counts > 0, counts, 1.0), np.nan)


def _interval(point: float, replicates: np.ndarray, name: str) -> dict[str, float]:
    """Point and percentile bounds; replicates that drew no row of the slice (NaN) are left
    out, and with none left the bounds are NaN."""
    finite = replicates[np.isfinite(replicates)]
    tail = (1.0 - LEVEL) / 2.0
    lo, hi = (np.quantile(finite, [tail, 1.0 - tail]) if finite.size
              else (float("nan"), float("nan")))
    return {f"{PREFIX}.{name}.point": float(point), f"{PREFIX}.{name}.lo": float(lo),
            f"{PREFIX}.{name}.hi": float(hi)}


def string_bootstrap(evaluation: pl.DataFrame, baselines: list[str], seed: int,
                     resamples: int = RESAMPLES) -> dict[str, float]:
    """90 % percentile intervals over strings drawn with replacement for the model's MAE
    ((0, 90], (90, 180], (0, 180], (0, 365], all rows), its P10-P90 coverage, the best
    baseline's (0, 180] MAE and the model's relative gain over it (paired: both from the same
    draw). The best baseline is the one with the lowest (0, 180] MAE on the full sample;
    `baselines` are their prediction columns in `evaluation` (one row per snapshot, at least
    one row)."""
    _, codes = np.unique(evaluation["string_id"].to_numpy(), return_inverse=True)
    n_strings = int(codes.max()) + 1
    y = evaluation[LABEL].to_numpy().astype(float)
    err = np.abs(evaluation["rul_p50_days"].to_numpy() - y)
    covered = ((y >= evaluation["rul_p10_days"].to_numpy())
               & (y <= evaluation["rul_p90_days"].to_numpy())).astype(float)
    masks = _bins(y)
    stats = {f"model.{name}": (err, mask) for name, mask in masks.items()}
    stats["model.coverage"] = (covered, masks["mae"])
    short = masks["mae_0_180"]
    base_err = {c: np.abs(evaluation[c].to_numpy() - y) for c in baselines}
    base_mae = {c: float(e[short].mean()) if short.any() else float("nan")
                for c, e in base_err.items()}
    best = min((c for c in base_mae if np.isfinite(base_mae[c])), key=base_mae.get, default=None)
    if best is not None:
        stats["best_baseline.mae_0_180"] = (base_err[best], short)

    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n_strings, np.full(n_strings, 1.0 / n_strings),
                            size=resamples).astype(float)
    out: dict[str, float] = {f"{PREFIX}.strings": float(n_strings),
                             f"{PREFIX}.resamples": float(resamples)}
    reps: dict[str, np.ndarray] = {}
    points: dict[str, float] = {}
    for name, (values, mask) in stats.items():
        sums = np.bincount(codes, weights=values * mask, minlength=n_strings)
        counts = np.bincount(codes, weights=mask.astype(float), minlength=n_strings)
        reps[name] = _ratio(draws @ sums, draws @ counts)
        points[name] = float(_ratio(np.array([sums.sum()]), np.array([counts.sum()]))[0])
        out |= _interval(points[name], reps[name], name)
    if best is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = 1.0 - reps["model.mae_0_180"] / reps["best_baseline.mae_0_180"]
            point = 1.0 - points["model.mae_0_180"] / points["best_baseline.mae_0_180"]
        out |= _interval(point, gain, "model.gain_0_180")
    return out
