"""Final holdout: train on a development lake, then score every battery of a lake generated
with another seed, on which nothing is tuned or chosen.

    uv run rul generate --out /work/devdata/holdout --seed 20261201 --days 730 \\
        --start 2024-01-01 --step 1h
    uv run python benchmarks/bench_holdout.py /work/devdata/lake /work/devdata/holdout \\
        --json holdout.json

The model is the one the pipeline would register as challenger (TrainConfig defaults: the same
splits, early stopping on the validation batteries, conformal offsets from the calibration
batteries) except that cross-validation and leave-one-site-out are off: they only report, they
change no model, and they would double the run. The baselines are those fitted on the
development training rows; the oracle and the detection metrics read the holdout's truth
(scoring only). Intervals resample the holdout's strings. Printed beside the development test
strings, with the targets of models/targets.py measured on both.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import polars as pl
from report import (
    INCLUSIVE,
    by_end_mode,
    detection,
    intervals,
    labelled,
    missing_lake,
    per_site,
    table,
    targets,
)

from models.evaluate import evaluation_metrics
from models.train import TrainConfig, TrainingReport, evaluation_table, train_and_evaluate

CONFIG = replace(TrainConfig(), cv_folds=0, loso=False)


def score_holdout(report: TrainingReport, development: pl.DataFrame, holdout: pl.DataFrame,
                  truth: pl.DataFrame, seed: int) -> dict[str, float]:
    """Metrics of the trained model on every labelled snapshot of `holdout`, with baselines
    fitted on the development training rows and the holdout's `truth` for scoring only."""
    train = development.filter(pl.col("battery_id").is_in(report.splits["train"]))
    evaluation = evaluation_table(report.model, holdout, train, truth, report.model.features,
                                  report.model.categorical)
    return evaluation_metrics(evaluation, truth, seed) | {
        "batteries.holdout": float(holdout["battery_id"].n_unique()),
        "rows.holdout": float(holdout.height)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lake_dev", type=Path, help="development lake (training and test strings)")
    parser.add_argument("lake_holdout", type=Path, help="holdout lake, generated with another seed")
    parser.add_argument("--json", type=Path, help="also write both runs' metrics to this file")
    args = parser.parse_args(argv)
    if missing_lake(args.lake_dev, args.lake_holdout):
        return 2
    if args.lake_dev.resolve() == args.lake_holdout.resolve():
        print("the holdout lake must differ from the development lake", file=sys.stderr)
        return 2

    began = time.perf_counter()
    _, development, dev_truth = labelled(args.lake_dev)
    report = train_and_evaluate(development, dev_truth, CONFIG)
    dev = report.metrics
    _, holdout, truth = labelled(args.lake_holdout)
    held = score_holdout(report, development, holdout, truth, CONFIG.seed)
    held["total.seconds"] = dev["total.seconds"]  # the training-time target is the dev run's

    runs = (("dev test strings", dev), ("holdout fleet", held))
    print(f"development {args.lake_dev}: trained on {dev['batteries.train']:.0f} batteries, "
          f"tested on {dev['batteries.test']:.0f} ({dev['rows.test']:.0f} snapshots); "
          f"CV and leave-one-site-out off")
    print(f"holdout {args.lake_holdout}: every battery, {held['batteries.holdout']:.0f} "
          f"batteries ({held['rows.holdout']:.0f} snapshots); nothing tuned on it\n")
    print(intervals(*runs), "\n")
    print(by_end_mode(*runs), "\n")
    print(detection(*runs), "\n")
    print(targets(*runs), "\n")
    print("development test strings, MAE in days by true RUL, zero-free bins:")
    print(table(dev), "\n")
    print("holdout, MAE in days by true RUL, zero-free bins:")
    print(table(held), "\n")
    print("holdout, already-failed rows (RUL 0) and the earlier figures that include them:")
    print(table(held, INCLUSIVE), "\n")
    print("holdout per site:")
    print(per_site(held), "\n")
    print(f"seconds: train_and_evaluate {dev['total.seconds']:.1f}, "
          f"total {time.perf_counter() - began:.1f}")
    if args.json:
        args.json.write_text(json.dumps({"development": dev, "holdout": held}, indent=1,
                                        sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
