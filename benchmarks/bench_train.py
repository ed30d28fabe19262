"""Training benchmark: features, training and the full evaluation on a Parquet lake. Prints the
model next to every baseline and the oracle, coverage per site, leave-one-site-out, timings
and peak RSS (targets: DOMAIN §6 / the training issue; the whole run <= 10 min on 2 cores).

    uv run python benchmarks/bench_train.py                       # data/lake
    uv run python benchmarks/bench_train.py /work/devdata/lake --json report.json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import polars as pl

from models.dataset import training_set
from models.features import snapshot_features
from models.targets import check_targets, targets_markdown
from models.train import TrainConfig, train_and_evaluate
from pipelines.lake import table_glob

COLUMNS = ("mae", "rmse", "r2", "mae_le180", "mae_le365", "mae_bin_0_90", "mae_bin_90_180",
           "mae_bin_180_365", "mae_bin_gt365", "late_share", "coverage", "interval_width_median")


def load(lake: Path) -> tuple[pl.LazyFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    return (pl.scan_parquet(table_glob(lake, "telemetry")),
            pl.read_parquet(table_glob(lake, "batteries")),
            pl.read_parquet(table_glob(lake, "maintenance_events")),
            pl.read_parquet(table_glob(lake, "battery_truth")))


def table(metrics: dict[str, float]) -> str:
    """One line per model/baseline/oracle with the headline metrics."""
    prefixes = sorted({k.rsplit(".", 1)[0] for k in metrics if k.endswith(".mae_le365")
                       and ".site." not in k and ".temp." not in k
                       and not k.startswith("soh_estimate.")},
                      key=lambda p: (p != "model", p.startswith("oracle"), p))
    lines = [f"{'':<20}" + "".join(f"{c.replace('mae_', ''):>11}" for c in COLUMNS)]
    for p in prefixes:
        cells = [metrics.get(f"{p}.{c}", float("nan")) for c in COLUMNS]
        lines.append(f"{p:<20}" + "".join(f"{v:>11.3f}" if abs(v) < 2 else f"{v:>11.1f}"
                                          for v in cells))
    return "\n".join(lines)


def per_site(metrics: dict[str, float]) -> str:
    sites = sorted(k.rsplit(".", 1)[1] for k in metrics if k.startswith("model.coverage.site."))
    header = (f"{'site':<12}{'coverage':>10}{'mae':>9}{'mae_le365':>11}{'loso_mae':>10}"
              f"{'loso_le365':>11}")
    lines = [header]
    for s in sites:
        v = [metrics.get(f"{k}.site.{s}", float("nan")) for k in (
            "model.coverage", "model.mae", "model.mae_le365", "loso.mae", "loso.mae_le365")]
        lines.append(f"{s:<12}{v[0]:>10.3f}{v[1]:>9.1f}{v[2]:>11.1f}{v[3]:>10.1f}{v[4]:>11.1f}")
    return "\n".join(lines)


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
    if not (args.lake / "telemetry").is_dir():
        print(f"{args.lake}: no telemetry/ folder; run `rul generate` first", file=sys.stderr)
        return 2

    began = time.perf_counter()
    telemetry, batteries, maintenance, truth = load(args.lake)
    features = snapshot_features(telemetry, batteries, maintenance)
    dataset = training_set(features, truth, batteries)
    t_features = time.perf_counter() - began

    t_train = time.perf_counter()
    report = train_and_evaluate(dataset, truth, TrainConfig())
    t_train = time.perf_counter() - t_train
    m = report.metrics
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"lake {args.lake}: {features.height:,} snapshots, {dataset.height:,} labelled; "
          f"test {m['batteries.test']:.0f} batteries ({m['rows.test']:.0f} rows)\n")
    print(table(m), "\n")
    print(per_site(m), "\n")
    keys = ("calibration.coverage_raw", "calibration.coverage", "cv.mae", "cv.mae_le365",
            "loso.mae", "loso.mae_le365", "loso.ratio", "loso.ratio_vs_test", "model.trees",
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
