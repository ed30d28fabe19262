"""The alert engine over the live lake: what the Dagster alert asset (and the soak) run after
every ingest and every scoring run. It evaluates the live readings published since its last
run (with an hour of overlap, which the engine skips as already seen, so durations and the
missing-readings rule see whole hours), the newest predictions, then publishes the store's
Parquet snapshot for the warehouse and sends pending critical notifications."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from alerting import engine, notify, store
from alerting.baselines import baselines_from_history
from core.lake import table_glob, write_frame
from core.layout import Layout
from simulator.live.control import read_json, write_json
from simulator.thresholds import Thresholds

OVERLAP = dt.timedelta(hours=1)


@dataclass
class Run:
    telemetry_rows: int = 0
    prediction_rows: int = 0
    opened: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)
    notified: int = 0
    until: str | None = None

    def add(self, result: engine.EngineResult) -> None:
        self.opened += result.opened
        self.resolved += result.resolved
        self.escalated += result.escalated


def baselines(layout: Layout) -> pl.DataFrame:
    """Per-battery baselines from the history, computed once and kept beside the store."""
    path = layout.alerts_db.parent / "baselines.parquet"
    if path.exists():
        return pl.read_parquet(path)
    history = table_glob(layout.lake_dir, "telemetry")
    frame = baselines_from_history(pl.scan_parquet(history)) if list(
        history.parent.glob(history.name)) else pl.DataFrame(
        schema={"battery_id": pl.String, "resistance_baseline_mohm": pl.Float64,
                "float_current_baseline_a": pl.Float64})
    write_frame(frame, path)
    return frame


def _live(layout: Layout, table: str, since: dt.datetime | None) -> pl.DataFrame | None:
    folder = layout.lake_dir / f"{table}_live"
    days = sorted(folder.glob("date=*"))
    if since is not None:
        days = [d for d in days if d.name >= f"date={since.date() - dt.timedelta(days=1)}"]
    files = [f for d in days for f in d.glob("*.parquet")]
    if not files:
        return None
    frame = pl.scan_parquet(files, hive_partitioning=False)
    if since is not None:
        frame = frame.filter(pl.col("ts") > since)
    return frame.collect()


def evaluate(layout: Layout, thresholds: Thresholds | None = None,
             webhook_url: str | None = None, telemetry: bool = True) -> Run:
    """New live readings (unless `telemetry` is False: the scoring run) and new predictions.
    Each input keeps its own cursor file, so the ingest and scoring runs never overwrite each
    other's."""
    run = Run()
    if telemetry:
        _evaluate_telemetry(layout, thresholds, run)
    cursor_path = layout.alerts_db.parent / "predictions_cursor.json"
    cursor = read_json(cursor_path, {}) or {}
    predictions = _newest_predictions(layout, cursor.get("predictions_file"))
    if predictions is not None:
        path, frame = predictions
        run.add(engine.evaluate_predictions(layout.alerts_db, frame, thresholds))
        run.prediction_rows = frame.height
        write_json(cursor_path, {"predictions_file": path})
    if run.telemetry_rows or run.prediction_rows or not (layout.lake_dir / "alerts.parquet").exists():
        store.connect(layout.alerts_db).close()  # creates the schema on a first run
        store.export_snapshot(layout.alerts_db, layout.lake_dir)
    if webhook_url:
        run.notified = len(notify.deliver_pending(layout.alerts_db, webhook_url).sent)
    return run


def _evaluate_telemetry(layout: Layout, thresholds: Thresholds | None, run: Run) -> None:
    cursor_path = layout.alerts_db.parent / "cursor.json"
    cursor = read_json(cursor_path, {}) or {}
    since = (dt.datetime.fromisoformat(cursor["telemetry_until"]) - OVERLAP
             if cursor.get("telemetry_until") else None)
    telemetry = _live(layout, "telemetry", since)
    if telemetry is not None and telemetry.height:
        environment = _live(layout, "environment", since)
        result = engine.evaluate_telemetry(layout.alerts_db, telemetry, environment,
                                           baselines(layout), thresholds)
        run.telemetry_rows = telemetry.height
        run.add(result)
        run.until = telemetry["ts"].max().isoformat()
        write_json(cursor_path, {"telemetry_until": run.until})


def _newest_predictions(layout: Layout, done: str | None) -> tuple[str, pl.DataFrame] | None:
    """The newest hour's predictions, if not evaluated yet (older hours are superseded)."""
    files = sorted((layout.lake_dir / "rul_predictions").glob("*/*.parquet"))
    if not files or str(files[-1]) == done:
        return None
    return str(files[-1]), pl.read_parquet(files[-1], hive_partitioning=False)

