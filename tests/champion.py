"""A small simulated fleet with a trained, registered champion model, for the tests of
`rul predict` and the notebooks: `rul generate` on the training tests' fleet, then the training
and registry functions the pipeline uses, in a temporary folder laid out like `RUL_DATA_DIR`
(lake + MLflow store)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import polars as pl
import tomlkit
from training_fleet import DAYS, FAST, START, labelled, training_fleet_raw

from core.settings import sqlite_uri

SEED = 11


@dataclass(frozen=True)
class Champion:
    data_dir: Path  # RUL_DATA_DIR: lake/ and mlflow/ below it
    fleet_config: Path
    tracking_uri: str
    version: int
    test_batteries: tuple[str, ...]  # the held-out strings' batteries of the training run

    @property
    def lake(self) -> Path:
        return self.data_dir / "lake"

    @property
    def env(self) -> dict[str, str]:
        return {"RUL_DATA_DIR": str(self.data_dir), "RUL_FLEET_CONFIG": str(self.fleet_config),
                "RUL_MLFLOW_URI": self.tracking_uri}


@cache
def _champion_in(root: Path) -> Champion:
    root.mkdir(parents=True)
    return build_champion(root)


def shared_champion(tmp_path_factory) -> Champion:
    """The session's one champion, for test modules that only read it (a build takes ~20 s:
    simulation, features with and without maintenance records, three boosters)."""
    return _champion_in(tmp_path_factory.getbasetemp() / "champion")


def build_champion(root: Path) -> Champion:
    """Generate the fleet, train quickly (few trees, no CV or leave-one-site-out), log the
    run and promote it, as `make pipeline` does at full size."""
    from models.registry import log_training, promote
    from models.train import train_and_evaluate
    from pipelines.cli import main

    config, data_dir = root / "fleet.toml", root / "data"
    config.write_text(tomlkit.dumps(training_fleet_raw()), encoding="utf-8")
    lake = data_dir / "lake"
    args = ["--start", START.isoformat(), "--days", str(DAYS), "--step", "1h", "--seed", str(SEED)]
    assert main(["generate", "--fleet", str(config), *args, "--out", str(lake)]) == 0

    batteries = pl.read_parquet(lake / "batteries" / "*.parquet")
    truth = pl.read_parquet(lake / "battery_truth" / "*.parquet")
    dataset, without_maintenance = labelled(
        pl.scan_parquet(lake / "telemetry" / "*.parquet"), batteries,
        pl.read_parquet(lake / "maintenance_events" / "*.parquet"), truth)
    report = train_and_evaluate(dataset, truth, replace(FAST, seed=SEED), without_maintenance)
    uri = sqlite_uri(data_dir / "mlflow" / "mlflow.db")
    (data_dir / "mlflow").mkdir(parents=True)
    _, version = log_training(
        report, tracking_uri=uri, fleet_config_text=config.read_text(encoding="utf-8"),
        seed=SEED, example=dataset,
        artifact_location=(data_dir / "mlflow" / "artifacts").as_uri())
    promote(version, "test fixture", tracking_uri=uri)
    return Champion(data_dir, config, uri, version, tuple(report.splits["test"]))
