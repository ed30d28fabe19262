"""Training benchmark: features, training and the full evaluation on a Parquet lake. Prints the
model next to every baseline and the oracle (MAE in zero-free true-RUL bins, and the earlier
figures that include the already-failed blocks), coverage per site, leave-one-site-out,
string-bootstrap intervals, detection of failed blocks, timings and peak RSS (targets: DOMAIN
§6 / models/targets.py; the whole run <= 10 min on 2 cores). The targets are for a fleet of an
unseen seed: benchmarks/bench_holdout.py measures them there.

    uv run python benchmarks/bench_train.py                       # data/lake
    uv run python benchmarks/bench_train.py /work/devdata/lake --json report.json
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import polars as pl
from report import (
    INCLUSIVE,
    by_end_mode,
    detection,
    intervals,
    labelled_with_and_without,
    missing_lake,
    per_site,
    table,
)

from models.targets import check_targets, targets_markdown
from models.train import TrainConfig, train_and_evaluate


def fade_in_last_year(truth: pl.DataFrame) -> tuple[float, float, float]:
    """Quartiles of the true fade (SoH points per year, over 30 days) in the last year of life:
    how many days of RUL one point of SoH error is worth near end of life."""
    rate = (truth.sort("battery_id", "ts").with_columns(
        rate=(pl.col("soh_pct").shift(30) - pl.col("soh_pct")).over("battery_id") / 30 * 365.25)
        .filter((pl.col("true_rul_days") <= 365) & pl.col("rate").is_not_null())["rate"])
    return tuple(float(rate.quantile(q)) for q in (0.25, 0.5, 0.75))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lake", type=Path, nargs="?", default=Path("data/lake"))
    parser.add_argument("--json", type=Path, help="also write all metrics to this JSON file")
    args = parser.parse_args(argv)
    if missing_lake(args.lake):
        return 2

    began = time.perf_counter()
    features, dataset, without_maintenance, truth = labelled_with_and_without(args.lake)
    t_features = time.perf_counter() - began

    t_train = time.perf_counter()
    report = train_and_evaluate(dataset, truth, TrainConfig(), without_maintenance)
    t_train = time.perf_counter() - t_train
    m = report.metrics
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"lake {args.lake}: {features.height:,} snapshots, {dataset.height:,} labelled; "
          f"test {m['batteries.test']:.0f} batteries ({m['rows.test']:.0f} rows)\n")
    print("MAE in days by true RUL, zero-free bins (already-failed blocks, RUL 0, in none):")
    print(table(m), "\n")
    print("already-failed rows (RUL 0) and the earlier figures that include them:")
    print(table(m, INCLUSIVE), "\n")
    print(per_site(m), "\n")
    print(intervals(("test strings", m)), "\n")
    print(by_end_mode(("test strings", m)), "\n")
    print(detection(("test strings", m)), "\n")
    keys = ("calibration.coverage_raw", "calibration.coverage", "cv.mae", "cv.mae_0_365",
            "loso.mae", "loso.mae_0_365", "loso.ratio", "loso.ratio_vs_test", "model.trees",
            "model.late_share_p10")
    print("  ".join(f"{k}={m[k]:.3g}" for k in keys if k in m))
    print("SoH estimation error on the test rows, points (all / RUL <= 365 d): " + ", ".join(
        f"{k.split('.')[1]} {m[k]:.2f} / {m[k.replace('_all', '_le365')]:.2f}"
        for k in sorted(m) if k.startswith("soh_estimate.") and k.endswith("_all")))
    print("true fade in the last year of life, SoH points/year (quartiles): "
          + " / ".join(f"{v:.2f}" for v in fade_in_last_year(truth)))
    print(f"\nseconds: features {t_features:.1f}, main fit {m['train.seconds']:.1f}, "
          f"cv+loso {m['study.seconds']:.1f}, train_and_evaluate {t_train:.1f}, "
          f"total {time.perf_counter() - began:.1f}; peak RSS {peak_mb:,.0f} MB")
    print("\n" + targets_markdown(check_targets(m)))
    print("top features (mean |SHAP| of P50, days):")
    for row in report.importance.sort("mean_abs_shap", descending=True).head(10).iter_rows():
        print(f"  {row[0]:<26}{row[2]:>8.1f}")
    if args.json:
        args.json.write_text(json.dumps(m, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
