"""The training issue's targets, checked against a run's metrics: one table for MLflow (as
`targets.md` and `target.<name>.met` metrics), the benchmark and the README, so a target is
never restated by hand. Measured figures only; a missed target stays missed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

ORACLE_FACTOR = 1.3  # where the oracle cannot reach an absolute target: within 1.3x of it


@dataclass(frozen=True)
class Target:
    name: str
    text: str
    measured: Callable[[dict[str, float]], float]
    bound: Callable[[dict[str, float]], tuple[float, float]]  # (low, high) allowed


def _m(key: str) -> Callable[[dict[str, float]], float]:
    return lambda m: m.get(key, float("nan"))


def _mae_bound(key: str, days: float) -> Callable[[dict[str, float]], tuple[float, float]]:
    """An absolute MAE target, or 1.3x the oracle's MAE where the oracle itself misses it."""
    def bound(m: dict[str, float]) -> tuple[float, float]:
        oracle = m.get(f"oracle.{key}", float("nan"))
        return 0.0, days if not oracle > days else ORACLE_FACTOR * oracle
    return bound


def _gain_over_best_baseline(m: dict[str, float]) -> float:
    base = [v for k, v in m.items() if k.startswith("baseline.") and k.endswith(".mae_le365")]
    return 1.0 - m.get("model.mae_le365", float("nan")) / min(base) if base else float("nan")


def _worst_site_coverage(m: dict[str, float]) -> float:
    sites = [v for k, v in m.items() if k.startswith("model.coverage.site.")]
    return min(sites) if sites else float("nan")


TARGETS = [
    Target("mae_le180", "MAE for true RUL <= 180 d <= 20 d (or 1.3x oracle)",
           _m("model.mae_le180"), _mae_bound("mae_le180", 20.0)),
    Target("mae_le365", "MAE for true RUL <= 365 d <= 45 d (or 1.3x oracle)",
           _m("model.mae_le365"), _mae_bound("mae_le365", 45.0)),
    Target("r2", "R2 >= 0.9", _m("model.r2"), lambda m: (0.9, np.inf)),
    Target("gain_over_baseline", "MAE (RUL <= 365 d) >= 30 % below the best baseline",
           _gain_over_best_baseline, lambda m: (0.30, np.inf)),
    Target("coverage", "P10-P90 coverage 78-82 %", _m("model.coverage"),
           lambda m: (0.78, 0.82)),
    Target("coverage_worst_site", "P10-P90 coverage >= 75 % at every site",
           _worst_site_coverage, lambda m: (0.75, np.inf)),
    Target("late_share", "late predictions (P50 > true + 30 d) <= 5 %",
           _m("model.late_share"), lambda m: (0.0, 0.05)),
    Target("late_share_p10", "late predictions of the P10 bound (risk levels use it) <= 5 %",
           _m("model.late_share_p10"), lambda m: (0.0, 0.05)),
    Target("loso_ratio", "leave-one-site-out MAE <= 1.5x in-distribution (CV) MAE",
           _m("loso.ratio"), lambda m: (0.0, 1.5)),
    Target("training_seconds", "training and evaluation <= 10 min",
           _m("total.seconds"), lambda m: (0.0, 600.0)),
]


def check_targets(metrics: dict[str, float]) -> pl.DataFrame:
    """One row per target: its text, the measured figure, the allowed range and whether it
    is met (a missing figure is not met)."""
    rows = []
    for t in TARGETS:
        value, (low, high) = t.measured(metrics), t.bound(metrics)
        rows.append({"target": t.name, "text": t.text, "measured": float(value),
                     "low": float(low), "high": float(high),
                     "met": bool(np.isfinite(value) and low <= value <= high)})
    return pl.DataFrame(rows)


def targets_markdown(table: pl.DataFrame) -> str:
    """The table as Markdown, for MLflow and the terminal."""
    lines = ["| target | measured | allowed | met |", "|---|---|---|---|"]
    for r in table.iter_rows(named=True):
        allowed = (f"<= {r['high']:.3g}" if r["low"] <= 0 else f">= {r['low']:.3g}"
                   if not np.isfinite(r["high"]) else f"{r['low']:.3g}-{r['high']:.3g}")
        lines.append(f"| {r['text']} | {r['measured']:.3g} | {allowed} | "
                     f"{'yes' if r['met'] else 'NO'} |")
    return "\n".join(lines) + "\n"
