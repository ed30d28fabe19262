"""Model-mismatch benchmark: train on a development lake simulated with the default physics,
then score fleets simulated with perturbed physics (another activation energy, fade shape,
resistance-versus-wear law, doubled measurement noise) and report how much each perturbation
degrades the model against the same fleet under the default physics.

    uv run python benchmarks/bench_mismatch.py /work/devdata/lake --json mismatch.json

The model is trained once, as bench_holdout does (TrainConfig defaults with cross-validation
and leave-one-site-out off: they change no model). The scored fleets use another seed than
the development lake, so every battery is unseen; to fit in ~10 minutes on two cores they
cover a subset of sites and a shorter window (both printed, both options). Every scored
fleet has the same seed, sites and window, so the rows of the default-physics fleet are the
reference each perturbation is compared with.

Sudden failures (an internal short, a thermal runaway) end a life at random, whatever the
laws, and dominate the short-RUL bins of a small fleet; the last column therefore also shows
the (0, 365] MAE of the batteries that wear out (their mode read from the truth, for scoring
only), where a mismatched law shows most directly.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
from report import labelled, missing_lake

from models.dataset import LABEL, training_set
from models.evaluate import SUDDEN
from models.features import snapshot_features
from models.metrics import regression_metrics
from models.rul_model import RulModel
from models.train import TrainConfig, train_and_evaluate
from simulator.config import load_fleet
from simulator.generate import Window, simulate_site
from simulator.physics import PhysicsParams

CONFIG = replace(TrainConfig(), cv_folds=0, loso=False)
DEFAULT = PhysicsParams()
# Ea follows ~1 / halving interval: +-15 % Ea is the interval divided by 1.15 or by 0.85
SCENARIOS = {
    "default physics": DEFAULT,
    "Ea +15 %": replace(DEFAULT, halving_interval_c=DEFAULT.halving_interval_c / 1.15),
    "Ea -15 %": replace(DEFAULT, halving_interval_c=DEFAULT.halving_interval_c / 0.85),
    "fade shape a=0.25": replace(DEFAULT, fade_linear_share=0.25),
    "R-wear exponent 1.6": replace(DEFAULT, resistance_wear_exponent=1.6),
    "measurement noise x2": replace(DEFAULT, measurement_noise_scale=2.0),
}
# a northern, the hottest central and a southern site: three climates, 648 batteries
SITES = ("DC-CNX-01", "DC-BKK-01", "DC-HDY-01")
METRICS = {"mae": "MAE", "mae_0_180": "MAE (0,180]", "mae_0_365": "MAE (0,365]",
           "coverage": "P10-P90 cov.", "wear_mae_0_365": "wear-out (0,365]"}


def perturbed_fleet(params: PhysicsParams, sites: list[str], window: Window,
                    seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(labelled snapshots, truth) of `sites` simulated with `params`, through the same
    feature code as training and `rul predict`."""
    fleet = load_fleet()
    histories = [simulate_site(fleet, s, window, seed, params=params) for s in sites]
    batteries = pl.concat([h.batteries for h in histories])
    truth = pl.concat([h.battery_truth for h in histories])
    features = snapshot_features(pl.concat([h.telemetry() for h in histories]), batteries,
                                 pl.concat([h.maintenance_events for h in histories],
                                           how="diagonal_relaxed"))
    return training_set(features, truth, batteries), truth


def score(model: RulModel, rows: pl.DataFrame, truth: pl.DataFrame) -> dict[str, float]:
    """The model's headline metrics on every labelled snapshot of `rows`, and the (0, 365]
    MAE of the batteries whose life ends by wear (the truth's failure mode)."""
    pred = model.predict(rows)
    y, p50 = rows[LABEL].to_numpy(), pred["rul_p50_days"].to_numpy()
    m = regression_metrics(y, p50, pred["rul_p10_days"].to_numpy(),
                           pred["rul_p90_days"].to_numpy())
    mode = rows.select("battery_id").join(truth.select("battery_id", "failure_mode").unique(
        "battery_id"), on="battery_id", how="left", maintain_order="left")["failure_mode"]
    wear = ~mode.is_in(SUDDEN).to_numpy()
    m["model.wear_mae_0_365"] = regression_metrics(y[wear], p50[wear])["model.mae_0_365"]
    return {k: m[f"model.{k}"] for k in METRICS} | {"rows": float(rows.height)}


def table(results: dict[str, dict[str, float]]) -> str:
    """One line per scenario: Ea, each metric and its change against the default physics."""
    ref = results["default physics"]
    head = f"{'perturbation':<22}{'Ea eV':>7}{'rows':>8}" + "".join(
        f"{name:>17}{'change':>8}" for name in METRICS.values())
    lines = [head]
    for name, m in results.items():
        cells = "".join(f"{m[k]:>17.3f}{m[k] - ref[k]:>+8.3f}" if k == "coverage"
                        else f"{m[k]:>17.1f}{m[k] - ref[k]:>+8.1f}" for k in METRICS)
        lines.append(f"{name:<22}{m['ea_ev']:>7.3f}{m['rows']:>8.0f}{cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lake", type=Path, help="development lake (default physics)")
    parser.add_argument("--sites", nargs="+", default=list(SITES), help="sites to simulate")
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2024, 1, 1))
    parser.add_argument("--days", type=int, default=365, help="window of the scored fleets")
    parser.add_argument("--seed", type=int, default=7, help="seed of the scored fleets")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if missing_lake(args.lake):
        return 2

    began = time.perf_counter()
    _, development, truth = labelled(args.lake)
    model = train_and_evaluate(development, truth, CONFIG).model
    print(f"trained on {args.lake} ({development.height:,} labelled snapshots) in "
          f"{time.perf_counter() - began:.0f} s; laws fitted on its training batteries:\n"
          f"  {model.laws}")
    window = Window(args.start, args.days, 3600)
    print(f"scored fleets: seed {args.seed}, sites {', '.join(args.sites)}, "
          f"{args.start} + {args.days} d at 1 h\n")
    results = {}
    for name, params in SCENARIOS.items():
        t0 = time.perf_counter()
        rows, truth = perturbed_fleet(params, args.sites, window, args.seed)
        results[name] = score(model, rows, truth) | {
            "ea_ev": float(params.activation_energy_ev)}
        print(f"  {name}: {rows.height:,} snapshots, {time.perf_counter() - t0:.0f} s",
              flush=True)
    print("\nMAE in days; zero-free bins leave the already-failed blocks (RUL 0) out\n")
    print(table(results))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\ntotal {time.perf_counter() - began:.0f} s; peak RSS {peak_mb:,.0f} MB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, sort_keys=True))
    return 0 if all(np.isfinite(m["mae"]) for m in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
