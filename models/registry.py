"""MLflow tracking and the model registry: every training run is logged with what it takes to
judge and reproduce it, and registered as a version of `battery-rul`. Aliases, not stages
(deprecated in MLflow 3), say which version does what: `challenger` is the newest, `champion`
serves predictions and moves only through `promote`, with the reason kept on the version.

Plain functions with an explicit tracking URI; mlflow is imported inside them because it takes
seconds to import.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from models.pyfunc import LoadedModel
    from models.train import TrainingReport

MODEL_NAME = EXPERIMENT = "battery-rul"
CHAMPION, CHALLENGER = "champion", "challenger"
CHAMPION_URI = f"models:/{MODEL_NAME}@{CHAMPION}"
EVALUATION = "evaluation/evaluation.parquet"
EXAMPLE_ROWS = 5
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")
_MAX_PARAM = 6000  # MLflow's limit on a parameter value


def log_training(
    report: TrainingReport,
    *,
    tracking_uri: str,
    fleet_config_text: str,
    seed: int,
    example: pl.DataFrame,
    data: dict[str, Any] | None = None,
    experiment: str = EXPERIMENT,
    artifact_location: str | None = None,
) -> tuple[str, int]:
    """Log one training run (params, metrics, evaluation, plots, splits, config, the model) and
    register the model as a new version with alias `challenger`. `example` holds feature rows
    for the signature and input example; `data` describes the data (simulation seed, window),
    logged as `data.*` params. Returns (run id, model version)."""
    import mlflow
    from mlflow.models import infer_signature

    from models.pyfunc import RulPyfunc, code_paths, to_model_input

    client = _client(tracking_uri)
    experiment_id = ensure_experiment(client, experiment, artifact_location)
    wrapped = RulPyfunc(report.model)
    model_input = to_model_input(report.model, example.head(EXAMPLE_ROWS))
    signature = infer_signature(model_input, wrapped.predict(None, model_input))
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-seed-{seed}") as run:
        mlflow.set_tags({"seed": str(seed), "registered_model": MODEL_NAME})
        mlflow.log_params({**flat_params(report.params), **flat_params(data or {}, "data."),
                           "seed": seed})
        mlflow.log_metrics(metric_names(report.metrics))
        _log_artifacts(report, example, fleet_config_text, seed)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=wrapped,
            signature=signature,
            input_example=model_input,
            registered_model_name=MODEL_NAME,
            code_paths=code_paths(),  # loads where this repository is not installed
        )
    version = int(info.registered_model_version)
    client.set_registered_model_alias(MODEL_NAME, CHALLENGER, str(version))
    return run.info.run_id, version


def _log_artifacts(report: TrainingReport, example: pl.DataFrame, fleet_config_text: str,
                   seed: int) -> None:
    import mlflow

    from models import plots
    from models.targets import check_targets, targets_markdown

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        report.evaluation.write_parquet(folder / "evaluation.parquet")
        report.evaluation.write_csv(folder / "evaluation.csv")
        report.importance.write_csv(folder / "feature_importance.csv")
        report.shap_sample.write_parquet(folder / "shap_sample.parquet")
        for name in ("evaluation.parquet", "evaluation.csv"):
            mlflow.log_artifact(str(folder / name), "evaluation")
        for name in ("feature_importance.csv", "shap_sample.parquet"):
            mlflow.log_artifact(str(folder / name), "importance")
    figures = {
        **plots.evaluation_figures(report.evaluation),
        "feature_importance.png": plots.importance(report.importance),
        "shap_summary.png": plots.shap_summary(report.shap_sample, _feature_values(
            report.shap_sample, example)),
    }
    for name, figure in figures.items():
        mlflow.log_figure(figure, f"plots/{name}")
    targets = check_targets(report.metrics)
    mlflow.log_text(targets_markdown(targets), "targets.md")
    mlflow.log_metrics({f"target.{t}.met": float(met) for t, met in targets.select(
        "target", "met").iter_rows()})
    mlflow.log_dict(report.splits, "splits/battery_ids.json")
    mlflow.log_text(fleet_config_text, "config/fleet.toml")
    mlflow.log_text(f"{seed}\n", "config/seed.txt")


def _feature_values(shap_sample: pl.DataFrame, example: pl.DataFrame) -> pl.DataFrame | None:
    """The feature values behind the SHAP sample's rows (for colour), when `example` has them."""
    keys = ["battery_id", "ts"]
    if not set(keys) <= set(shap_sample.columns) & set(example.columns):
        return None
    values = shap_sample.select(keys).join(example, on=keys, how="left", maintain_order="left")
    return values if values.height == shap_sample.height else None


def metric_names(metrics: dict[str, float]) -> dict[str, float]:
    """Metrics under names MLflow accepts everywhere (letters, digits, `_ - .`)."""
    return {_sanitize(name): float(value) for name, value in metrics.items()}


def flat_params(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested parameters as dotted names with string values within MLflow's size limit."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = _sanitize(f"{prefix}{key}")
        if isinstance(value, dict):
            flat |= flat_params(value, f"{name}.")
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            flat[name] = text[:_MAX_PARAM]
    return flat


def _sanitize(name: str) -> str:
    return re.sub(r"\.{2,}", ".", re.sub(r"[^\w.\-]", "_", name)).strip(".")


def load_model(uri: str = CHAMPION_URI, *, tracking_uri: str) -> LoadedModel:
    """The model at `uri` (default: the champion), ready for `rul predict` and scoring.
    Raises LookupError, naming the URI and the store, when nothing is registered there."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from models.pyfunc import LoadedModel

    _require_store(tracking_uri, uri)
    client = _client(tracking_uri)
    match = _MODELS_URI.match(uri)
    if not match:
        raise LookupError(f"{uri}: expected models:/<name>@<alias> or models:/<name>/<version>")
    name = match["name"]
    try:
        version = (client.get_model_version_by_alias(name, match["alias"]) if match["alias"]
                   else client.get_model_version(name, match["version"]))
    except MlflowException as exc:
        raise LookupError(f"no model registered at {uri} in {tracking_uri}: {exc.message}") from None
    wrapped = mlflow.pyfunc.load_model(f"models:/{name}/{version.version}").unwrap_python_model()
    return LoadedModel(wrapped.model, name, int(version.version), version.run_id)


def _require_store(tracking_uri: str, uri: str) -> None:
    """A missing SQLite file means nothing was ever registered; do not create an empty one."""
    prefix = "sqlite:///"  # then a relative path, or an absolute one starting with /
    if tracking_uri.startswith(prefix) and not Path(tracking_uri.removeprefix(prefix)).exists():
        raise LookupError(f"no model registered at {uri}: the MLflow store {tracking_uri} "
                          "does not exist yet")


def champion_version(*, tracking_uri: str) -> int | None:
    """The version serving predictions, or None before the first promotion."""
    from mlflow.exceptions import MlflowException

    try:
        return int(_client(tracking_uri).get_model_version_by_alias(MODEL_NAME, CHAMPION).version)
    except MlflowException:
        return None


def champion_details(*, tracking_uri: str, ui_url: str) -> dict[str, Any] | None:
    """What the model page shows of the champion (version, run, metrics, tags, description,
    registration time, the run's MLflow UI link); None before the first promotion or when
    the store does not exist yet (nothing is created)."""
    from mlflow.exceptions import MlflowException

    prefix = "sqlite:///"
    if tracking_uri.startswith(prefix) and not Path(tracking_uri.removeprefix(prefix)).exists():
        return None
    client = _client(tracking_uri)
    try:
        version = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    except MlflowException:
        return None
    run = client.get_run(version.run_id)
    return {"name": MODEL_NAME, "version": int(version.version), "run_id": version.run_id,
            "metrics": dict(run.data.metrics), "tags": dict(version.tags),
            "description": version.description or "",
            "registered_at": dt.datetime.fromtimestamp(version.creation_timestamp / 1000, dt.UTC),
            "url": run_url(ui_url, version.run_id, tracking_uri=tracking_uri)}


def promote(version: int, reason: str, *, tracking_uri: str) -> None:
    """Make `version` the champion and keep why on the version (tag and description)."""
    client = _client(tracking_uri)
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, str(version))
    _record(client, version, "promoted", reason)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    client.update_model_version(MODEL_NAME, str(version), description=f"Champion since {when}: "
                                f"{reason}")


def reject(version: int, reason: str, *, tracking_uri: str) -> None:
    """Keep the champion where it is and note on the challenger why it was not promoted."""
    _record(_client(tracking_uri), version, "rejected", reason)


def _record(client: MlflowClient, version: int, decision: str, reason: str) -> None:
    client.set_model_version_tag(MODEL_NAME, str(version), "promotion.decision", decision)
    client.set_model_version_tag(MODEL_NAME, str(version), "promotion.reason", reason)


def run_metrics(run_id: str, *, tracking_uri: str) -> dict[str, float]:
    return dict(_client(tracking_uri).get_run(run_id).data.metrics)


def run_evaluation(run_id: str, *, tracking_uri: str) -> pl.DataFrame:
    """The evaluation table a run logged: its test snapshots, truth and predictions."""
    import mlflow

    _client(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=EVALUATION, dst_path=tmp, tracking_uri=tracking_uri)
        return pl.read_parquet(path)


def run_url(ui_url: str, run_id: str, *, tracking_uri: str) -> str:
    """Where the MLflow UI shows a run."""
    experiment_id = _client(tracking_uri).get_run(run_id).info.experiment_id
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """The experiment's id, created on first use (artifacts where the settings say)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location)


def _client(tracking_uri: str) -> MlflowClient:
    """A client for the store; the fluent API (runs, log_model) uses the same URIs."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
