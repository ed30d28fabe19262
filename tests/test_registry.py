"""MLflow logging and the model registry against a real SQLite store in tmp_path, with a model
trained here: a run holds what it takes to judge and reproduce the model, each version becomes
the `challenger`, and `champion` moves only when the promotion gate says it was earned."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import pytest
from training_fleet import FAST, training_data

from assets.training.promotion import decide
from core.settings import sqlite_uri
from models import registry
from models.pyfunc import QUANTILES, to_model_input
from models.targets import TARGETS
from models.train import TrainingReport, train_and_evaluate

PLOTS = {"predicted_vs_true", "calibration", "errors_by_rul", "errors_by_site",
         "errors_by_temperature", "feature_importance", "shap_summary"}


@pytest.fixture(scope="module")
def trained() -> tuple[TrainingReport, pl.DataFrame]:
    dataset, truth = training_data()
    return train_and_evaluate(dataset, truth, FAST), dataset


@pytest.fixture
def store(tmp_path: Path) -> str:
    return sqlite_uri(tmp_path / "mlflow.db")


def log(trained, store: str, **metrics: float) -> tuple[str, int]:
    """Log the trained model, with some of its metrics replaced to stage a decision."""
    report, dataset = trained
    report = dataclasses.replace(report, metrics={**report.metrics, **metrics})
    return registry.log_training(
        report, tracking_uri=store, fleet_config_text="# fleet\n", seed=FAST.seed,
        example=dataset, data={"seed": 11, "days": 450},
        artifact_location=(Path(store.removeprefix("sqlite:///")).parent / "artifacts").as_uri())


def artifacts(client: mlflow.MlflowClient, run_id: str, path: str = "") -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def test_log_training_records_the_run_and_registers_a_challenger(trained, store):
    report, dataset = trained
    run_id, version = log(trained, store)

    client = mlflow.MlflowClient(store)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    targets = {k for k in run.data.metrics if k.startswith("target.")}
    assert targets == {f"target.{t.name}.met" for t in TARGETS}
    assert run.data.metrics.keys() - targets == report.metrics.keys()  # names were valid
    assert run.data.metrics["model.mae_0_365"] == pytest.approx(report.metrics["model.mae_0_365"])
    assert run.data.params["seed"] == str(FAST.seed) and run.data.params["data.days"] == "450"
    assert run.data.params["iterations"] == str(FAST.iterations)
    logged = artifacts(client, run_id)
    assert {f"plots/{name}.png" for name in PLOTS} <= logged
    assert {"evaluation/evaluation.parquet", "evaluation/evaluation.csv",
            "importance/feature_importance.csv", "splits/battery_ids.json",
            "config/fleet.toml", "config/seed.txt", "targets.md"} <= logged
    evaluation = registry.run_evaluation(run_id, tracking_uri=store)
    assert evaluation.equals(report.evaluation)

    assert version == 1
    assert int(client.get_model_version_by_alias(registry.MODEL_NAME, "challenger").version) == 1
    assert registry.champion_version(tracking_uri=store) is None

    # the registered artifact predicts what the trained model predicts, via both entry points
    test = dataset.filter(pl.col("battery_id").is_in(report.splits["test"])).head(20)
    expected = report.model.predict(test).select(QUANTILES).to_numpy()
    loaded = registry.load_model(f"models:/{registry.MODEL_NAME}@challenger", tracking_uri=store)
    assert (loaded.version, loaded.run_id) == (1, run_id)
    np.testing.assert_allclose(loaded.predict(test).select(QUANTILES).to_numpy(), expected)
    served = mlflow.pyfunc.load_model(f"models:/{registry.MODEL_NAME}/1")
    output = served.predict(to_model_input(loaded.model, test))
    np.testing.assert_allclose(output[QUANTILES].to_numpy(), expected)
    assert output["driver_1"].str.contains(r"\(.*d\)").all()


def test_first_version_is_promoted_only_if_it_beats_the_baselines(trained, store):
    baselines = [v for k, v in trained[0].metrics.items()
                 if k.startswith("baseline.") and k.endswith(".mae_0_365")]

    run_id, version = log(trained, store, **{"model.mae_0_365": max(baselines) + 1.0})
    lost = decide(version, run_id, trained[1], tracking_uri=store)
    assert not lost.promoted and lost.after is None and "does not beat" in lost.reason
    assert registry.champion_version(tracking_uri=store) is None

    run_id, version = log(trained, store, **{"model.mae_0_365": min(baselines) - 1.0})
    won = decide(version, run_id, trained[1], tracking_uri=store)
    assert won.promoted and won.champion is None and "beats every baseline" in won.reason
    assert registry.champion_version(tracking_uri=store) == version == 2
    client = mlflow.MlflowClient(store)
    promoted = client.get_model_version(registry.MODEL_NAME, "2")
    assert promoted.tags["promotion.decision"] == "promoted"
    assert won.reason in promoted.description
    assert client.get_model_version(registry.MODEL_NAME, "1").tags["promotion.decision"] == (
        "rejected")


def test_a_new_version_is_promoted_only_when_it_beats_the_re_scored_champion(trained, store):
    report, dataset = trained
    run_id, first = log(trained, store, **{"model.mae_0_365": 0.0})
    assert decide(first, run_id, dataset, tracking_uri=store).promoted
    honest = report.metrics["model.mae_0_365"]  # what the champion scores on the same test set

    run_id, worse = log(trained, store, **{"model.mae_0_365": honest + 5.0, "model.coverage": 0.8})
    kept = decide(worse, run_id, dataset, tracking_uri=store)
    assert kept.champion["model.mae_0_365"] == pytest.approx(honest)
    assert not kept.promoted and kept.after == first and "is not below champion" in kept.reason

    run_id, better = log(trained, store, **{"model.mae_0_365": honest - 5.0, "model.coverage": 0.8})
    moved = decide(better, run_id, dataset, tracking_uri=store)
    assert moved.promoted and moved.before == first and moved.after == better
    assert registry.champion_version(tracking_uri=store) == better
    assert registry.load_model(tracking_uri=store).version == better


def test_load_model_without_a_champion_raises_a_clear_lookup_error(trained, store, tmp_path):
    missing = sqlite_uri(tmp_path / "nowhere" / "mlflow.db")
    with pytest.raises(LookupError, match="does not exist yet"):
        registry.load_model(tracking_uri=missing)
    assert not (tmp_path / "nowhere").exists()

    log(trained, store)  # a challenger, but nothing promoted
    with pytest.raises(LookupError, match=r"no model registered at models:/battery-rul@champion"):
        registry.load_model(tracking_uri=store)


def test_a_champion_that_cannot_score_todays_features_is_judged_by_the_baselines(trained, store):
    report, dataset = trained
    run_id, first = log(trained, store, **{"model.mae_0_365": 0.0})
    assert decide(first, run_id, dataset, tracking_uri=store).promoted
    baselines = [v for k, v in report.metrics.items()
                 if k.startswith("baseline.") and k.endswith(".mae_0_365")]
    run_id, second = log(trained, store, **{"model.mae_0_365": min(baselines) - 1.0})
    renamed = dataset.rename({"r_30d": "r_30d_renamed"})  # a feature the champion needs is gone
    moved = decide(second, run_id, renamed, tracking_uri=store)
    assert moved.promoted and moved.champion is None and moved.after == second
    assert f"champion v{first} cannot score the current features" in moved.reason
    assert "beats every baseline" in moved.reason
