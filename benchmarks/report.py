"""Loading a lake and printing a run's metrics: shared by bench_train (development test
strings) and bench_holdout (a fleet of another seed), so both show the same figures the same
way. Plain text tables from the flat metric dicts of models.train."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl

from core.lake import table_glob
from models.dataset import training_set
from models.features import snapshot_features, snapshot_features_with_and_without
from models.targets import allowed_text, best_baseline, check_targets

# zero-free: true RUL in (low, high], the already-failed rows (RUL 0) in none of them
ZERO_FREE = {"mae": "mae", "rmse": "rmse", "r2": "r2", "mae_bin_0_90": "(0,90]",
             "mae_bin_90_180": "(90,180]", "mae_0_180": "(0,180]", "mae_bin_180_365": "(180,365]",
             "mae_0_365": "(0,365]", "mae_bin_gt365": ">365", "late_share": "late",
             "coverage": "coverage", "interval_width_median": "width"}
# the earlier, inclusive figures, shown beside them: they mix in the failed blocks
INCLUSIVE = {"n_rul0": "n RUL=0", "mae_rul0": "RUL=0", "mae_le180": "<=180",
             "mae_le365": "<=365", "n_0_180": "n (0,180]", "n_0_365": "n (0,365]"}
INTERVALS = {"model.mae_bin_0_90": "model MAE (0,90]", "model.mae_bin_90_180":
             "model MAE (90,180]", "model.mae_0_180": "model MAE (0,180]",
             "model.mae_0_365": "model MAE (0,365]", "model.mae": "model MAE all",
             "model.coverage": "model P10-P90 coverage",
             "best_baseline.mae_0_180": "best baseline MAE (0,180]",
             "model.gain_0_180": "gain over best baseline (0,180]"}
DETECTION = {"n_below80": "snapshots with true SoH < 80 %",
             "flagged_share_below80": "  share flagged critical (P10 < 90 d)",
             "n_crossing": "blocks crossing 80 % in the scored period",
             "flagged_by_crossing": "  flagged critical at or before the crossing",
             "lead_days_median": "  their median lead, days",
             "delay_days_median": "  delay to the first critical flag, median days",
             "delay_days_p90": "  delay, P90 days",
             "never_flagged": "  never flagged by the end of data (censored)",
             "n_above90": "snapshots with true SoH > 90 %",
             "false_alarm_share_above90": "  share flagged critical (false alarms)"}


def missing_lake(*lakes: Path) -> bool:
    """Whether a lake has no telemetry (said on stderr): the benchmarks' one input check."""
    for lake in lakes:
        if not (lake / "telemetry").is_dir():
            print(f"{lake}: no telemetry/ folder; run `rul generate` first", file=sys.stderr)
            return True
    return False


def load(lake: Path) -> tuple[pl.LazyFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Telemetry (lazy), batteries, maintenance events and the hidden truth of a lake."""
    return (pl.scan_parquet(table_glob(lake, "telemetry")),
            pl.read_parquet(table_glob(lake, "batteries")),
            pl.read_parquet(table_glob(lake, "maintenance_events")),
            pl.read_parquet(table_glob(lake, "battery_truth")))


def labelled(lake: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(snapshot features, labelled training set, truth) of a lake, as the pipeline builds
    them."""
    telemetry, batteries, maintenance, truth = load(lake)
    features = snapshot_features(telemetry, batteries, maintenance)
    return features, training_set(features, truth, batteries), truth


def labelled_with_and_without(lake: Path) -> tuple[pl.DataFrame, ...]:
    """(snapshot features, labelled training set, the same labelled without the maintenance
    records, truth) of a lake, from one pass over its telemetry."""
    telemetry, batteries, maintenance, truth = load(lake)
    features, without = snapshot_features_with_and_without(telemetry, batteries, maintenance)
    return (features, training_set(features, truth, batteries),
            training_set(without, truth, batteries), truth)


def _cell(v: float, width: int) -> str:
    """Counts and other whole numbers as integers, shares with three decimals, days with one."""
    if np.isfinite(v) and float(v).is_integer():
        return f"{v:>{width}.0f}"
    return f"{v:>{width}.3f}" if abs(v) < 2 else f"{v:>{width}.1f}"


def table(metrics: dict[str, float], columns: dict[str, str] = ZERO_FREE) -> str:
    """One line per model/baseline/oracle/CV/LOSO prefix with the given metric columns."""
    prefixes = sorted({k.rsplit(".", 1)[0] for k in metrics if k.endswith(".mae_0_365")
                       and ".site." not in k and ".temp." not in k
                       and not k.startswith(("soh_estimate.", "ci."))},
                      key=lambda p: (p != "model", p.startswith("oracle"), p))
    lines = [f"{'':<20}" + "".join(f"{c:>11}" for c in columns.values())]
    for p in prefixes:
        lines.append(f"{p:<20}" + "".join(_cell(metrics.get(f"{p}.{c}", np.nan), 11)
                                          for c in columns))
    return "\n".join(lines)


def per_site(metrics: dict[str, float]) -> str:
    """Coverage and MAE of the model per site, and leave-one-site-out MAE where it ran."""
    cols = {"model.coverage": "coverage", "model.mae": "mae", "model.mae_0_180": "(0,180]",
            "model.mae_0_365": "(0,365]", "model.mae_le365": "<=365", "loso.mae": "loso mae",
            "loso.mae_0_365": "loso(0,365]"}
    sites = sorted(k.rsplit(".", 1)[1] for k in metrics if k.startswith("model.coverage.site."))
    lines = [f"{'site':<12}" + "".join(f"{c:>12}" for c in cols.values())]
    for s in sites:
        lines.append(f"{s:<12}" + "".join(_cell(metrics.get(f"{k}.site.{s}", np.nan), 12)
                                          for k in cols))
    return "\n".join(lines)


def _interval(metrics: dict[str, float], name: str) -> str:
    point, lo, hi = (metrics.get(f"ci.{name}.{b}", np.nan) for b in ("point", "lo", "hi"))
    return f"{_cell(point, 9)} [{_cell(lo, 8).strip():>8}, {_cell(hi, 8).strip():>8}]"


def intervals(*runs: tuple[str, dict[str, float]]) -> str:
    """The headline metrics with their 90 % string-bootstrap intervals, one column per run."""
    width = 30
    lines = [f"{'point [90 % CI over strings]':<34}" + "".join(f"{t:>{width}}" for t, _ in runs)]
    for name, text in INTERVALS.items():
        lines.append(f"{text:<34}" + "".join(f"{_interval(m, name):>{width}}" for _, m in runs))
    lines.append(f"{'best baseline on (0,180]':<34}" + "".join(
        f"{best_baseline(m) or '-':>{width}}" for _, m in runs))
    lines.append(f"{'strings resampled':<34}" + "".join(
        f"{m.get('ci.strings', np.nan):>{width}.0f}" for _, m in runs))
    return "\n".join(lines)


def by_end_mode(*runs: tuple[str, dict[str, float]]) -> str:
    """Short-RUL MAEs of the model, the best baseline and the oracle, split by how the
    battery's life ends (wear-out or a sudden short/runaway), one column per run."""
    lines = [f"{'MAE by how the life ends, days (rows)':<50}" + "".join(
        f"{t:>22}" for t, _ in runs)]
    for who in ("model", "baseline.linear", "oracle"):
        for key in ("mae_0_180", "mae_0_365"):
            count = key.replace("mae", "n")
            for mode in ("wear_out", "sudden"):
                cells = "".join(
                    f"{m.get(f'{who}.{key}.{mode}', np.nan):>14.1f} "
                    f"({m.get(f'{who}.{count}.{mode}', np.nan):>5.0f})"
                    for _, m in runs)
                lines.append(f"{who + ' ' + key.replace('mae_', '') + ' ' + mode:<50}{cells}")
    return "\n".join(lines)


def detection(*runs: tuple[str, dict[str, float]]) -> str:
    """Detection of the already-failed blocks by the critical risk level, one column per run."""
    lines = [f"{'detection (critical: P10 < 90 d)':<50}" + "".join(f"{t:>16}" for t, _ in runs)]
    for key, text in DETECTION.items():
        lines.append(f"{text:<50}" + "".join(
            _cell(m.get(f"detection.{key}", np.nan), 16) for _, m in runs))
    return "\n".join(lines)


def targets(*runs: tuple[str, dict[str, float]]) -> str:
    """The targets of models/targets.py, measured on each run, side by side."""
    checked = [(title, check_targets(m)) for title, m in runs]
    first = checked[0][1]
    lines = [f"{'target':<56}{'allowed':>12}" + "".join(f"{t:>22}" for t, _ in runs)]
    for i, row in enumerate(first.iter_rows(named=True)):
        allowed = allowed_text(row["low"], row["high"])
        cells = "".join(f"{t['measured'][i]:>15.3g} {'met' if t['met'][i] else 'MISSED':>6}"
                        for _, t in checked)
        lines.append(f"{row['text']:<56}{allowed:>12}{cells}")
    return "\n".join(lines)
