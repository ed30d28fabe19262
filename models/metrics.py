"""Error metrics for RUL predictions and the rule that decides whether a model is promoted.

Metrics follow DOMAIN §6: errors in days, sliced by true-RUL bin (short RUL is what operators
act on), the share of dangerous late predictions, and interval coverage and width. Every value
is a plain float under a flat `<prefix>.<name>` key, so a dict goes to MLflow as is. A slice
with no rows gives NaN rather than a made-up number.

The label is clipped at 0 and a block past end of life stays in service until it is found, so
about half of the rows with a short true RUL are blocks that have already failed (label 0):
an easy answer that flatters any "RUL <= 180 d" figure. The bins and the deciding metric
therefore leave the label-0 rows out (a failed block is a detection task, models.detection);
the inclusive `mae_le180` / `mae_le365` are kept beside them so both can be shown.
"""

from __future__ import annotations

import numpy as np

# true RUL in (low, high]: none holds the already-failed rows (RUL 0)
BINS = {"0_90": (0.0, 90.0), "90_180": (90.0, 180.0), "180_365": (180.0, 365.0),
        "gt365": (365.0, np.inf)}
SPANS = {"0_180": (0.0, 180.0), "0_365": (0.0, 365.0)}  # zero-free spans over several bins
LATE_MARGIN_DAYS = 30.0  # predicted RUL more than this above the truth is "late" (DOMAIN §6)
# A challenger's 80 % interval must cover 75-85 % of its test rows: coverage measured on ~18
# test strings carries a 90 % bootstrap interval of about +-2.5 points (measured 0.790-0.834),
# so a 78-82 % band rejected well-calibrated challengers on sampling noise alone (a better
# one at 0.825 was turned away); 75-85 % is also the coverage target of issue 7.
COVERAGE_BAND = (0.75, 0.85)
DECIDING_METRIC = "mae_0_365"  # zero-free: true RUL in (0, 365]


def _mae(err: np.ndarray) -> float:
    return float(np.mean(np.abs(err))) if err.size else float("nan")


def regression_metrics(
    true: np.ndarray, pred: np.ndarray, p10: np.ndarray | None = None,
    p90: np.ndarray | None = None, prefix: str = "model",
) -> dict[str, float]:
    """MAE, RMSE and R2 overall; MAE per zero-free true-RUL bin, for RUL in (0, 180] and
    (0, 365], on the already-failed rows (RUL 0), and inclusive of them for RUL <= 180 / <= 365
    days; the late share; P10-P90 coverage, median width and the P10's late share when the
    bounds are given."""
    y, p = np.asarray(true, dtype=float), np.asarray(pred, dtype=float)
    err = p - y
    sst = float(np.sum((y - y.mean()) ** 2)) if y.size else 0.0
    out = {
        "n": float(y.size),
        "mae": _mae(err),
        "rmse": float(np.sqrt(np.mean(err**2))) if y.size else float("nan"),
        "r2": 1.0 - float(np.sum(err**2)) / sst if sst > 0 else float("nan"),
        "bias_median": float(np.median(err)) if y.size else float("nan"),
        "mae_le180": _mae(err[y <= 180]),
        "mae_le365": _mae(err[y <= 365]),
        "mae_rul0": _mae(err[y <= 0]),
        "n_rul0": float(np.sum(y <= 0)),
        "late_share": float(np.mean(err > LATE_MARGIN_DAYS)) if y.size else float("nan"),
        "late_share_le365": (float(np.mean(err[y <= 365] > LATE_MARGIN_DAYS))
                             if (y <= 365).any() else float("nan")),
    }
    for name, (lo, hi) in BINS.items():
        out[f"mae_bin_{name}"] = _mae(err[(y > lo) & (y <= hi)])
    for name, (lo, hi) in SPANS.items():
        inside = (y > lo) & (y <= hi)
        out[f"mae_{name}"] = _mae(err[inside])
        out[f"n_{name}"] = float(np.sum(inside))
    if p10 is not None and p90 is not None:
        lo_, hi_ = np.asarray(p10, dtype=float), np.asarray(p90, dtype=float)
        covered = (y >= lo_) & (y <= hi_)
        out["coverage"] = float(np.mean(covered)) if y.size else float("nan")
        out["coverage_le365"] = (float(np.mean(covered[y <= 365]))
                                 if (y <= 365).any() else float("nan"))
        out["interval_width_median"] = float(np.median(hi_ - lo_)) if y.size else float("nan")
        # what `rul predict` alerts on: a P10 above the truth is the late bound that matters
        out["late_share_p10"] = (float(np.mean(lo_ - y > LATE_MARGIN_DAYS)) if y.size
                                 else float("nan"))
    return {f"{prefix}.{k}": v for k, v in out.items()}


def promotion_decision(
    challenger: dict[str, float], champion: dict[str, float] | None
) -> tuple[bool, str]:
    """Whether the challenger should become the champion, and the numbers that decided.

    Without a champion it must beat every baseline's MAE for true RUL in (0, 365] (zero-free)
    on its own test set. With one (re-scored by the caller on the challenger's test set) it
    must beat the champion's on the same metric and keep its P10-P90 coverage within
    COVERAGE_BAND."""
    key = f"model.{DECIDING_METRIC}"
    mine = challenger.get(key)
    if mine is None or not np.isfinite(mine):
        return False, f"challenger has no finite {key}"
    if champion is None:
        base = {k.removesuffix(f".{DECIDING_METRIC}"): v for k, v in challenger.items()
                if k.startswith("baseline.") and k.endswith(f".{DECIDING_METRIC}")}
        if not base:
            return False, f"no baseline {DECIDING_METRIC} to compare {key}={mine:.1f} with"
        best_name, best = min(base.items(), key=lambda kv: kv[1])
        if mine < best:
            return True, (f"{key}={mine:.1f} d beats every baseline (best {best_name}="
                          f"{best:.1f} d)")
        return False, f"{key}={mine:.1f} d does not beat {best_name}={best:.1f} d"
    theirs = champion.get(key)
    if theirs is None or not np.isfinite(theirs):
        return False, f"champion has no finite {key}; cannot compare"
    cov = challenger.get("model.coverage", float("nan"))
    lo, hi = COVERAGE_BAND
    if not mine < theirs:
        return False, f"challenger {key}={mine:.1f} d is not below champion {theirs:.1f} d"
    if not lo <= cov <= hi:
        return False, (f"challenger {key}={mine:.1f} d beats champion {theirs:.1f} d but "
                       f"coverage {cov:.3f} is outside {lo:.2f}-{hi:.2f}")
    return True, (f"challenger {key}={mine:.1f} d beats champion {theirs:.1f} d with coverage "
                  f"{cov:.3f} in {lo:.2f}-{hi:.2f}")
