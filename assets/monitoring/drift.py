"""The daily drift report: the latest scored day's features against the champion's training
features (Evidently 0.7, `models.drift`), with a WARN check on the drifted share."""

import datetime as dt
from pathlib import Path

import dagster as dg
from pydantic import Field

from assets.resources.mlflow_store import MlflowStore
from assets.resources.storage import LakeStorage
from assets.training.features import TRAINING_SET, TRAINING_SET_FILE
from assets.training.model import MODEL
from core.layout import Layout

DRIFT = dg.AssetKey(["reports", "drift"])
# A share, not a count: one feature of ~50 crossing its distance threshold on a given day is
# weather; a whole family moving together is a change in the fleet's conditions. The
# temperature family (mean, max, hours above 30/35 degC and Arrhenius hours over five
# windows, site temperature) is about 40 % of the monitored features, and a +10 degC heat
# wave drifted ~0.5 of them in tests/test_drift.py while a normal window drifted ~0.1: 0.3
# catches a family-wide shift with margin on both sides.
DEFAULT_SHARE_THRESHOLD = 0.3


class DriftConfig(dg.Config):
    """What the drift report compares and when it warns."""

    drift_share_threshold: float = Field(
        default=DEFAULT_SHARE_THRESHOLD, ge=0.0, le=1.0,
        description="The check warns when more than this share of the monitored features "
        "drifted (normed Wasserstein or Jensen-Shannon distance >= 0.1).")
    day: str | None = Field(
        default=None, description="Scored day to compare (YYYY-MM-DD); default the latest "
        "day under lake/features/scored/.")
    max_rows: int = Field(
        default=5_000, gt=0, description="Rows sampled per side (fixed seed) before Evidently.")


@dg.asset(
    key=DRIFT,
    group_name="monitoring",
    kinds={"evidently", "html"},
    deps=[TRAINING_SET, MODEL],
)
def drift_report(context: dg.AssetExecutionContext, config: DriftConfig, storage: LakeStorage,
                 mlflow: MlflowStore) -> dg.MaterializeResult:
    """Evidently data drift of the model's features and prediction drift of rul_p50_days:
    the latest scored day (lake/features/scored/date=<day>/) against the champion's training
    rows (lake/features/training_set.parquet, train batteries of its MLflow run). HTML at
    reports/drift/<day>.html."""
    from models import drift

    try:
        day, current = drift.read_scored(
            storage.lake_dir, dt.date.fromisoformat(config.day) if config.day else None)
    except FileNotFoundError as exc:
        raise dg.Failure(f"{exc}: the hourly scorer has not persisted scored features yet"
                         ) from None
    train_ids = drift.champion_train_batteries(mlflow.tracking_uri)
    reference = drift.training_reference(storage.read_derived(TRAINING_SET_FILE), train_ids)
    source = (f"train split of the champion's run ({len(train_ids)} batteries)" if train_ids
              else "whole training set (no champion registered)")
    path = drift.report_path(Layout(Path(storage.base_dir)).reports_dir, day)
    result = drift.drift_report(reference, current, path, max_rows=config.max_rows)
    context.log.info(f"{day}: {len(result.drifted)} of {len(result.columns)} features drifted "
                     f"({result.share:.0%}); reference: {source}")
    top = sorted(result.columns.values(), key=lambda c: -c.score)[:15]
    table = "\n".join(f"| {c.column} | {c.score:.3f} | {'yes' if c.drifted else ''} |" for c in top)
    metadata = {
        "report": dg.MetadataValue.path(str(result.path)),
        "report_url": dg.MetadataValue.url(result.path.resolve().as_uri()),
        "drifted_share": float(round(result.share, 4)),
        "drift_share_threshold": config.drift_share_threshold,
        "drifted_features": ", ".join(result.drifted) or "none",
        "features_monitored": len(result.columns),
        "top_scores": dg.MetadataValue.md(
            "| feature | distance | drifted |\n|---|---|---|\n" + table),
        "scored_day": day.isoformat(),
        "reference": source,
        "reference_rows": result.reference_rows,
        "current_rows": result.current_rows,
    }
    if result.prediction is not None:
        metadata["prediction_drift_score"] = float(round(result.prediction.score, 4))
        metadata["prediction_drifted"] = result.prediction.drifted
    return dg.MaterializeResult(metadata=metadata)


@dg.asset_check(asset=DRIFT, name="drifted_share",
                description="Warns when the share of drifted features in the latest drift "
                "report exceeds the threshold it was run with.")
def drifted_share(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    event = context.instance.get_latest_materialization_event(DRIFT)
    if event is None or event.asset_materialization is None:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN,
                                   description="no drift report materialized yet")
    meta = event.asset_materialization.metadata
    share, limit = meta["drifted_share"].value, meta["drift_share_threshold"].value
    return dg.AssetCheckResult(
        passed=share <= limit, severity=dg.AssetCheckSeverity.WARN,
        description=f"{share:.0%} of features drifted (threshold {limit:.0%}) on "
                    f"{meta['scored_day'].value}",
        metadata={"drifted_share": share, "threshold": limit,
                  "drifted_features": meta["drifted_features"].value,
                  "report": meta["report"]})


daily_drift = dg.ScheduleDefinition(
    name="daily_drift_report",
    target=dg.AssetSelection.assets(DRIFT),  # the check runs with its asset
    cron_schedule="30 0 * * *",
    execution_timezone="Asia/Bangkok",
    description="Each day at 00:30 Bangkok time: drift of the latest scored day.",
    default_status=dg.DefaultScheduleStatus.RUNNING,  # `make demo`'s daemon runs it
)
