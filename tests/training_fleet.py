"""A fleet just big enough to train on in tests: three sites x 3 strings x 6 blocks (54
batteries) over 450 days, so every site has a held-out test string and some batteries near end
of life, and a CatBoost setup that fits in seconds."""

from __future__ import annotations

import datetime as dt
import tomllib

import polars as pl

from models.dataset import training_set
from models.features import snapshot_features_with_and_without
from models.train import TrainConfig
from simulator.config import DEFAULT_FLEET_PATH, parse_fleet
from simulator.generate import Window, simulate_site

START, DAYS = dt.date(2024, 1, 1), 450
SITES = ("DC-CNX-01", "DC-KKN-01", "DC-BKK-01")
FAST = TrainConfig(iterations=80, learning_rate=0.1, early_stopping_rounds=30, cv_folds=0,
                   loso=False, shap_sample_rows=100, thread_count=2)


def training_fleet_raw() -> dict:
    """The default fleet's config cut to SITES, one system of 3 strings x 6 blocks each,
    commissioned in 2014 (blocks rated 10 y at 25 degC reach end of life in the window), one
    string re-strung in 2017 and one in 2023 so ages differ."""
    raw = tomllib.loads(DEFAULT_FLEET_PATH.read_text(encoding="utf-8"))
    sites = []
    commissioned = dt.date(2014, 1, 1)
    for site in (s for s in raw["sites"] if s["code"] in SITES):
        system = site["systems"][0] | {"strings": 3, "blocks_per_string": 6}
        system["string_installed"] = [commissioned, dt.date(2017, 1, 1), dt.date(2023, 6, 1)]
        sites.append(site | {"commissioned": commissioned, "systems": [system],
                             "unit_replacements": []})
    return raw | {"sites": sites}


def training_data(seed: int = 11) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(training set, battery truth) of the simulated fleet, without Dagster."""
    fleet = parse_fleet(training_fleet_raw(), source="training fleet")
    histories = [simulate_site(fleet, s.code, Window(START, DAYS, 3600), seed) for s in fleet.sites]
    batteries = pl.concat([h.batteries for h in histories])
    truth = pl.concat([h.battery_truth for h in histories])
    dataset, _ = labelled(pl.concat([h.telemetry() for h in histories]), batteries,
                          pl.concat([h.maintenance_events for h in histories]), truth)
    return dataset, truth


def labelled(telemetry: pl.DataFrame | pl.LazyFrame, batteries: pl.DataFrame,
             maintenance: pl.DataFrame, truth: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The training set, and the same snapshots built without the maintenance records (what
    `rul predict` sees without --maintenance; `train_and_evaluate` learns and calibrates it)."""
    return tuple(training_set(f, truth, batteries)
                 for f in snapshot_features_with_and_without(telemetry, batteries, maintenance))
