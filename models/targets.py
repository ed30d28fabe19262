"""The targets of the model (issue 7), checked against a run's metrics: one table for MLflow
(as `targets.md` and `target.<name>.met` metrics), the benchmarks and the README, so a target
is never restated by hand. Measured figures only; a missed target stays missed.

The accuracy targets are on true RUL in (0, 180]: the already-failed blocks (RUL 0) are a
detection task (models.detection) and would flatter the figure. They are meant for batteries
of a fleet generated with an unseen seed (benchmarks/bench_holdout.py); on the development
test strings the same table is an in-distribution reading.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

GAIN_METRIC = "mae_0_180"  # the baselines are compared with the model on this MAE


@dataclass(frozen=True)
class Target:
    name: str
    text: str
    measured: Callable[[dict[str, float]], float]
    bound: tuple[float, float]  # (low, high) allowed


def _m(key: str) -> Callable[[dict[str, float]], float]:
    return lambda m: m.get(key, float("nan"))


def best_baseline(metrics: dict[str, float], metric: str = GAIN_METRIC) -> str | None:
    """The prefix (`baseline.<name>`) of the baseline with the lowest finite `metric`."""
    base = {k.removesuffix(f".{metric}"): v for k, v in metrics.items()
            if k.startswith("baseline.") and k.endswith(f".{metric}") and np.isfinite(v)}
    return min(base, key=base.get) if base else None


def _gain_over_best_baseline(m: dict[str, float]) -> float:
    best = best_baseline(m)
    if best is None:
        return float("nan")
    return 1.0 - m.get(f"model.{GAIN_METRIC}", float("nan")) / m[f"{best}.{GAIN_METRIC}"]


def _site_coverage(pick: Callable[[list[float]], float]) -> Callable[[dict[str, float]], float]:
    def measured(m: dict[str, float]) -> float:
        sites = [v for k, v in m.items() if k.startswith("model.coverage.site.")]
        return pick(sites) if sites else float("nan")
    return measured


TARGETS = [
    Target("mae_0_180", "MAE for true RUL in (0, 180] <= 45 d (unseen seed)",
           _m("model.mae_0_180"), (0.0, 45.0)),
    Target("gain_over_baseline", "MAE for RUL in (0, 180] >= 30 % below the best baseline",
           _gain_over_best_baseline, (0.30, np.inf)),
    Target("coverage", "P10-P90 coverage 75-85 % overall", _m("model.coverage"),
           (0.75, 0.85)),
    Target("coverage_site_min", "P10-P90 coverage >= 75 % at every site (lowest site)",
           _site_coverage(min), (0.75, np.inf)),
    Target("coverage_site_max", "P10-P90 coverage <= 85 % at every site (highest site)",
           _site_coverage(max), (0.0, 0.85)),
    Target("training_seconds", "training and evaluation <= 10 min",
           _m("total.seconds"), (0.0, 600.0)),
]


def check_targets(metrics: dict[str, float]) -> pl.DataFrame:
    """One row per target: its text, the measured figure, the allowed range and whether it
    is met (a missing figure is not met)."""
    rows = []
    for t in TARGETS:
        value, (low, high) = t.measured(metrics), t.bound
        rows.append({"target": t.name, "text": t.text, "measured": float(value),
                     "low": float(low), "high": float(high),
                     "met": bool(np.isfinite(value) and low <= value <= high)})
    return pl.DataFrame(rows)


def allowed_text(low: float, high: float) -> str:
    """The allowed range as people write it: <= high, >= low or low-high."""
    if low <= 0:
        return f"<= {high:.3g}"
    return f">= {low:.3g}" if not np.isfinite(high) else f"{low:.3g}-{high:.3g}"


def targets_markdown(table: pl.DataFrame) -> str:
    """The table as Markdown, for MLflow and the terminal."""
    lines = ["| target | measured | allowed | met |", "|---|---|---|---|"]
    for r in table.iter_rows(named=True):
        lines.append(f"| {r['text']} | {r['measured']:.3g} | {allowed_text(r['low'], r['high'])}"
                     f" | {'yes' if r['met'] else 'NO'} |")
    return "\n".join(lines) + "\n"
