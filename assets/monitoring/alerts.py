"""The alert engine as an asset: run after every ingest of live readings and every scoring run,
over what they published. The store is SQLite (WAL) because operators acknowledge alerts
while the engine writes them; the warehouse reads its Parquet snapshot."""

from pathlib import Path

import dagster as dg

from assets.resources.notifications import Notifications
from assets.resources.storage import LakeStorage

LIVE_INPUTS = [dg.AssetKey(["lake", t]) for t in ("telemetry_live", "environment_live")]
ALERTS_KEY = dg.AssetKey(["lake", "alerts"])


@dg.asset(
    key=ALERTS_KEY,
    group_name="monitoring",
    kinds={"sqlite", "parquet"},
    deps=[*LIVE_INPUTS, dg.AssetKey(["lake", "rul_predictions"])],
    retry_policy=dg.RetryPolicy(max_retries=3, delay=2),  # a busy store: try again shortly
)
def alerts(context: dg.AssetExecutionContext, storage: LakeStorage,
           notifications: Notifications) -> dg.MaterializeResult:
    """Evaluate the DOMAIN §5 alert rules (thresholds.toml) on the live readings and the
    newest predictions published since the last run; open, update and resolve alerts in the
    alert store, publish its snapshot (`alerts`, `alert_events` views) and notify."""
    import polars as pl

    from alerting.live import evaluate
    from core.layout import Layout

    layout = Layout(Path(storage.base_dir))
    run = evaluate(layout, webhook_url=notifications.webhook_url)
    snapshot = pl.read_parquet(layout.lake_dir / "alerts.parquet")
    live = snapshot.filter(pl.col("status") != "resolved")
    counts = live.group_by("severity").len().sort("severity")
    context.log.info(f"opened {len(run.opened)}, resolved {len(run.resolved)}; "
                     f"{live.height} open or acknowledged")
    return dg.MaterializeResult(metadata={
        "telemetry_rows": run.telemetry_rows, "prediction_rows": run.prediction_rows,
        "opened": len(run.opened), "escalated": len(run.escalated),
        "resolved": len(run.resolved), "notified": run.notified,
        "open_or_acknowledged": live.height,
        "by_severity": dg.MetadataValue.md("\n".join(
            f"- {s}: {n}" for s, n in counts.iter_rows()) or "none"),
        "evaluated_until": str(run.until), "store": dg.MetadataValue.path(str(layout.alerts_db)),
    })
