"""The training assets on a small simulated fleet, with the lake, the MLflow store and the
Dagster instance all in tmp_path: features and the training set land in the lake, the model is
logged and registered as challenger, and the blocking promotion check gates the champion."""

from __future__ import annotations

import dataclasses
import math

import dagster as dg
import mlflow
import pytest
import tomlkit
from training_fleet import DAYS, FAST, SITES, START, training_fleet_raw

from assets.training.model import TrainingConfig
from core.settings import Settings
from models import registry
from pipelines.definitions import build_definitions
from pipelines.headless import plan

MODEL = dg.AssetKey(["models", "battery_rul"])
TRAINING = dg.AssetSelection.groups("training")
RUN_CONFIG = dg.RunConfig(ops={"models__battery_rul": TrainingConfig(**dataclasses.asdict(FAST))})


@pytest.fixture
def settings(tmp_path) -> Settings:
    fleet = tmp_path / "training_fleet.toml"
    fleet.write_text(tomlkit.dumps(training_fleet_raw()), encoding="utf-8")
    return Settings(data_dir=tmp_path / "data", fleet_config=fleet, seed=11, start=START,
                    days=DAYS, step_s=3600)


def train(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize([*defs.assets, *defs.asset_checks], selection=TRAINING,
                          resources=defs.resources, instance=instance, run_config=RUN_CONFIG,
                          raise_on_error=False)


def test_training_assets_register_the_model_and_gate_its_promotion(settings):
    defs = build_definitions(settings)
    storage, store = defs.resources["storage"], settings.mlflow_uri
    with dg.DagsterInstance.ephemeral() as instance:
        for site in SITES:
            assert dg.materialize(list(defs.assets), selection=dg.AssetSelection.groups("data"),
                                  resources=defs.resources, partition_key=site,
                                  instance=instance).success
        first = train(defs, instance)
        # an operator promotes v1 by hand (e.g. from a notebook); then the same data and seed
        # train an identical v2
        registry.promote(1, "promoted by hand for the test", tracking_uri=store)
        second = train(defs, instance)

    materialized = {e.asset_key.to_user_string(): e.materialization.metadata
                    for e in first.get_asset_materialization_events()}
    assert set(materialized) == {"features/snapshots", "features/training_set",
                                 "models/battery_rul"}
    for name in ("features/snapshots", "features/training_set"):
        assert storage.derived_path(name).exists()
    model = materialized["models/battery_rul"]
    assert model["model_version"].value == 1
    assert math.isfinite(model["mae_le365_days"].value) and 0 <= model["coverage"].value <= 1
    run_id = model["mlflow_run_id"].value
    assert model["run_url"].value.startswith(f"{settings.mlflow_ui_url}/#/experiments/")
    assert model["run_url"].value.endswith(f"/runs/{run_id}")
    assert mlflow.MlflowClient(store).get_run(run_id).data.params["data.days"] == str(DAYS)

    # On this tiny fleet the calendar baseline wins (about 100 vs 150 days of MAE for RUL up
    # to a year), so v1 is not promoted; with no champion nothing could serve predictions,
    # so the check fails with ERROR and, being blocking, fails the run.
    [check] = first.get_asset_check_evaluations()
    assert (check.asset_key, check.check_name) == (MODEL, "promotion")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "does not beat baseline" in check.metadata["reason"].value
    assert check.metadata["champion_after"].value == "none"
    assert not first.success

    # v2 is compared with the champion re-scored on v2's own test set; being the same model it
    # is not better, so it stays challenger (WARN: not blocking) and v1 keeps serving.
    [check] = second.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["challenger_version"].value == 2
    assert check.metadata["champion_before"].value == "v1"
    assert "is not below champion" in check.metadata["reason"].value
    assert "champion (re-scored)" in check.metadata["comparison"].value
    assert second.success
    assert registry.champion_version(tracking_uri=store) == 1
    client = mlflow.MlflowClient(store)
    assert int(client.get_model_version_by_alias(registry.MODEL_NAME, "challenger").version) == 2


def test_rul_pipeline_trains_after_the_warehouse_in_its_own_run(settings):
    runs = plan(build_definitions(settings))

    assert [label for label, _, _ in runs] == ["fleet", *SITES, "warehouse", "training"]
    assert {k.to_user_string() for k in runs[-1][1]} == {
        "features/snapshots", "features/training_set", "models/battery_rul"}
    assert runs[-2][1] == {dg.AssetKey("warehouse")}
