"""The RUL model: trained on the labelled snapshots, logged to MLflow and registered as the
`challenger`. Whether it becomes the `champion` is the blocking check's decision
(`assets.training.promotion`), not this asset's."""

import dataclasses
import typing
from pathlib import Path

import dagster as dg
import pydantic
from pydantic import Field

from assets.resources.mlflow_store import MlflowStore
from assets.resources.simulation import Simulation
from assets.resources.storage import LakeStorage
from assets.training.features import (
    TRAINING_SET,
    TRAINING_SET_FILE,
    WITHOUT_MAINTENANCE,
    lake_key,
)
from models.registry import MODEL_NAME
from models.train import TrainConfig

MODEL = dg.AssetKey(["models", "battery_rul"])


def _mirror(train_config: type) -> type[dg.Config]:
    """A `dg.Config` with the fields, defaults and help texts of the `TrainConfig` dataclass,
    so the launchpad offers every training knob and the two never drift apart."""
    hints = typing.get_type_hints(train_config)
    fields = {
        f.name: (hints[f.name], Field(default=f.default, description=f.metadata.get("help")))
        for f in dataclasses.fields(train_config)
    }
    return pydantic.create_model(
        "TrainingConfig", __base__=dg.Config, __module__=__name__,
        __doc__="Training run settings (models.train.TrainConfig).", **fields)


TrainingConfig = _mirror(TrainConfig)


@dg.asset(
    key=MODEL,
    group_name="training",
    kinds={"catboost", "mlflow"},
    deps=[TRAINING_SET, lake_key("battery_truth")],
)
def battery_rul(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    storage: LakeStorage,
    mlflow: MlflowStore,
    simulation: Simulation,
) -> dg.MaterializeResult:
    """Train the quantile RUL model with its baselines and oracle, log the run (metrics, plots,
    evaluation, splits, config) to MLflow and register it as a new `challenger` version."""
    from models.registry import log_training
    from models.train import train_and_evaluate
    from simulator.config import DEFAULT_FLEET_PATH

    dataset = storage.read_derived(TRAINING_SET_FILE)
    report = train_and_evaluate(dataset, storage.read("battery_truth"),
                                TrainConfig(**config.model_dump()),
                                storage.read_derived(TRAINING_SET_FILE + WITHOUT_MAINTENANCE))
    fleet_config = Path(simulation.fleet_config or DEFAULT_FLEET_PATH)
    run_id, version = log_training(
        report,
        tracking_uri=mlflow.tracking_uri,
        artifact_location=mlflow.artifact_location,
        fleet_config_text=fleet_config.read_text(encoding="utf-8"),
        seed=config.seed,
        example=dataset,
        data={"fleet_config": str(fleet_config), "seed": simulation.seed,
              "start": simulation.start, "days": simulation.days, "step_s": simulation.step_s},
    )
    url = mlflow.run_url(run_id)
    metrics = report.metrics
    context.log.info(f"registered version {version} as challenger: MAE<=365d "
                     f"{metrics['model.mae_le365']:.1f} d, coverage "
                     f"{metrics['model.coverage']:.2f}; {url}")
    return dg.MaterializeResult(metadata={
        "mlflow_run_id": run_id,
        "model_version": version,
        "mae_le365_days": float(metrics["model.mae_le365"]),
        "coverage": float(metrics["model.coverage"]),
        "run_url": dg.MetadataValue.url(url),
        "model_uri": f"models:/{MODEL_NAME}/{version}",
        "test_batteries": len(report.splits.get("test", [])),
    })
