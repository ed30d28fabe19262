"""Hourly fleet scoring: every battery in service at a simulated hour, scored with the MLflow
`champion` from the daily store, one Parquet file per hour (replaced when re-scored). The
work is done by models.daily_store (bring the daily rows up to date with new telemetry) and
models.scoring (features, status, predictions); this asset wires them to the lake and the
registry and reports what it wrote."""

from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from assets.metadata import markdown_table, table_metadata
from assets.resources.mlflow_store import MlflowStore
from assets.resources.storage import LakeStorage
from assets.scoring.partitions import SIM_HOURS, key_hour
from assets.training.features import lake_key
from assets.training.model import MODEL
from core.lake import Written
from models.registry import CHAMPION_URI

RUL_PREDICTIONS = dg.AssetKey(["lake", "rul_predictions"])
SCORING_POOL = "rul_scoring"  # one run at a time writes the daily store (dagster.yaml: limit 1)
PREDICTIONS_GLOB = "rul_predictions/*/*.parquet"  # under the lake: the warehouse view's source
SCORED_FEATURES_GLOB = "features/scored/*/*.parquet"  # the drift report's current window


class ScoringConfig(dg.Config):
    """How a scoring run picks its model and its path through the store."""

    model_uri: str = Field(default=CHAMPION_URI, description="Registered model to score with "
                           "(models:/<name>@<alias> or models:/<name>/<version>).")
    point_days: int = Field(default=3, ge=1, description="Runs covering up to this many days "
                            "read only the last year of the store per day; larger backfills "
                            "score every day in one pass over the whole store.")


@dg.asset(
    key=RUL_PREDICTIONS,
    group_name="scoring",
    kinds={"parquet", "duckdb"},
    partitions_def=SIM_HOURS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=SCORING_POOL,
    deps=[dg.AssetDep(lake_key(t), partition_mapping=dg.AllPartitionMapping())
          for t in ("telemetry", "batteries", "maintenance_events")]
    + [MODEL, dg.AssetKey(["lake", "telemetry_live"])],
)
def rul_predictions(context: dg.AssetExecutionContext, config: ScoringConfig,
                    storage: LakeStorage, mlflow: MlflowStore) -> dg.MaterializeResult:
    """RUL P10/P50/P90 (days), risk level of the P10, status and top drivers of every battery
    in service at each simulated hour, scored with the champion from the daily store after
    adding the new live telemetry to it: `lake/rul_predictions/date=YYYY-MM-DD/HH.parquet`,
    with the scored feature rows in `lake/features/scored/` for the drift report. Scores use
    whole UTC days, as `rul predict` does, so the hours of a day share their numbers."""
    from models.daily_store import update_store
    from models.registry import load_model
    from models.scoring import score_hours, write_scores

    lake = storage.lake_dir
    batteries, maintenance = storage.read("batteries"), storage.read("maintenance_events")
    update = update_store(lake, batteries, maintenance)
    context.log.info(f"daily store: {'rebuilt' if update.rebuilt else 'updated'} "
                     f"{len(update.days)} day(s), {update.rows:,} rows")
    model = load_model(config.model_uri, tracking_uri=mlflow.tracking_uri)
    hours = sorted(key_hour(k) for k in context.partition_keys)
    scores = score_hours(lake, batteries, maintenance, model, hours,
                         point_days=config.point_days)
    written = [write_scores(lake, s) for s in scores]
    from alerting.live import evaluate
    from core.layout import Layout

    # the RUL rules judge the newest hour (a backfill's older hours are superseded)
    alerts = evaluate(Layout(Path(storage.base_dir)), telemetry=False)
    last = scores[-1].predictions
    status = last.group_by("status").len().sort("status")
    risk = last.filter(pl.col("risk_level").is_not_null()).group_by("risk_level").len().sort(
        "risk_level")
    context.log.info(f"{model.name} v{model.version}: {len(scores)} hour(s), last "
                     f"{hours[-1]:%Y-%m-%d %H:%M}: " + ", ".join(
                         f"{n:,} {s}" for s, n in status.iter_rows()))
    return dg.MaterializeResult(metadata={
        **table_metadata(Written(written[-1][0], sum(s.predictions.height for s in scores),
                                 last.head(5))),
        "hours": len(scores),
        "first_hour": min(context.partition_keys),  # keys sort in time order
        "last_hour": max(context.partition_keys),
        "batteries_in_service": last.height,
        "status": dg.MetadataValue.md(markdown_table(status)),
        "risk_levels": dg.MetadataValue.md(markdown_table(risk)),
        "model_version": model.version,
        "mlflow_run_id": model.run_id,
        "run_url": dg.MetadataValue.url(mlflow.run_url(model.run_id)),
        "scored_features": dg.MetadataValue.path(str(written[-1][1])),
        "store_rebuilt": update.rebuilt,
        "store_days_updated": len(update.days),
        "rul_alerts_opened": len(alerts.opened), "rul_alerts_resolved": len(alerts.resolved),
    })


score_hours_job = dg.define_asset_job(
    "rul_scoring",
    selection=[RUL_PREDICTIONS],
    partitions_def=SIM_HOURS,
    description="Score the fleet at the simulated hours of the run's partitions "
    "(`lake/rul_predictions`); requested by the scoring sensors.",
)
