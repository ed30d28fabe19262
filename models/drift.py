"""Feature and prediction drift between the champion's training features (reference) and the
features of the latest scoring window (current), with an Evidently 0.7 report.

Drift is measured per column as an effect size, not a significance: the Wasserstein distance
normed by the reference's standard deviation for numbers, the Jensen-Shannon distance for
categories, a column drifting at 0.1 or more. Evidently's default switches from a K-S p-value
to that distance at 1,000 rows, and p-values would be wrong here anyway: the rows are weekly
snapshots (reference) or hourly scores (current) of the same batteries, not independent draws,
so with thousands of them every trivial shift would be "significant".

Features that grow with calendar time by construction (age, observed days, life-to-date sums
and maxima) are left out: the latest window is always older than the training history, so
they would drift on every run and drown the signal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from models.rul_model import default_categorical, model_features
from simulator.atomic import atomic_path

PREDICTION = "rul_p50_days"
TARGET = "true_rul_days"  # the reference's stand-in for predictions (the training label)
NUM_METHOD, CAT_METHOD, COLUMN_THRESHOLD = "wasserstein", "jensenshannon", 0.1
# Rows per frame handed to Evidently: its tests run in pandas/scipy on one core and its HTML
# embeds every column's distribution, so the full training history (~10^5-10^6 snapshots)
# would take minutes and tens of MB; 5,000 rows pin a normed Wasserstein distance to about
# +-0.02, well inside the 0.1 threshold. The seed makes a day's report repeatable.
MAX_ROWS, SAMPLE_SEED = 5_000, 20_260_101
CLOCK_FEATURES = frozenset({
    "age_days", "observed_days", "life_used_est", "temp_max_life", "hours_above_30_life",
    "hours_above_35_life", "arrhenius_hours_life", "discharge_ah_life", "discharge_days_life",
    "deepest_discharge_life", "capacity_test_age_days", "discharge_soh_age_days",
})


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    method: str
    score: float  # the distance (higher = more drift)
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    path: Path  # the HTML report
    share: float  # drifted share of the monitored feature columns
    drifted: list[str]
    columns: dict[str, ColumnDrift]
    prediction: ColumnDrift | None
    reference_rows: int
    current_rows: int
    skipped: list[str] = field(default_factory=list)  # candidates all-null in one frame

    def scores(self) -> dict[str, float]:
        return {name: c.score for name, c in self.columns.items()}


def report_path(reports_dir: Path, day: dt.date) -> Path:
    """`<reports>/drift/<YYYY-MM-DD>.html`."""
    return reports_dir / "drift" / f"{day.isoformat()}.html"


def monitored_columns(
    reference: pl.DataFrame, current: pl.DataFrame, features: Sequence[str] | None = None
) -> tuple[list[str], list[str]]:
    """The feature columns to compare, by default the model's (snapshot, derived and
    categorical features) without the clock features, present and not all-null in both
    frames; and the candidates skipped because one frame has no value for them."""
    candidates = list(features) if features is not None else [
        c for c in model_features(default_categorical()) if c not in CLOCK_FEATURES]
    present = [c for c in candidates if c in reference.columns and c in current.columns]
    empty = {c for c in present
             if reference[c].null_count() == reference.height
             or current[c].null_count() == current.height}
    return [c for c in present if c not in empty], [c for c in present if c in empty]


def _sample(df: pl.DataFrame, max_rows: int, seed: int) -> pl.DataFrame:
    return df.sample(n=max_rows, seed=seed) if df.height > max_rows else df


def _pandas(df: pl.DataFrame, columns: list[str]):
    """Evidently reads pandas; NaN and null both become missing, strings stay categories."""
    out = df.select([pl.col(c).fill_nan(None) if df.schema[c].is_float() else pl.col(c)
                     for c in columns])
    return out.to_pandas()


def drift_report(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    path: Path,
    *,
    features: Sequence[str] | None = None,
    max_rows: int = MAX_ROWS,
    seed: int = SAMPLE_SEED,
) -> DriftResult:
    """Compare `current` (latest scoring window, with `rul_p50_days`) to `reference` (training
    features, with `rul_p50_days` or the label `true_rul_days`), save the Evidently HTML at
    `path` atomically and return the per-column distances. Raises ValueError if a frame is
    empty or no feature column is comparable."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    if reference.height == 0 or current.height == 0:
        raise ValueError(f"drift needs rows on both sides: reference {reference.height}, "
                         f"current {current.height}")
    columns, skipped = monitored_columns(reference, current, features)
    if not columns:
        raise ValueError("no feature column is present (and not all-null) in both frames")
    ref_pred = PREDICTION if PREDICTION in reference.columns else (
        TARGET if TARGET in reference.columns else None)
    with_prediction = ref_pred is not None and PREDICTION in current.columns
    if with_prediction:
        reference = reference.rename({ref_pred: PREDICTION}) if ref_pred != PREDICTION \
            else reference
    keep = [*columns, PREDICTION] if with_prediction else columns
    ref = _pandas(_sample(reference, max_rows, seed), keep)
    cur = _pandas(_sample(current, max_rows, seed), keep)

    categorical = [c for c in columns if reference.schema[c] in (pl.String, pl.Categorical,
                                                                  pl.Boolean)
                   or isinstance(reference.schema[c], pl.Enum)]
    numerical = [c for c in keep if c not in categorical]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    metrics = [DataDriftPreset(columns=columns, num_method=NUM_METHOD, cat_method=CAT_METHOD,
                               threshold=COLUMN_THRESHOLD)]
    if with_prediction:
        metrics.append(ValueDrift(column=PREDICTION, method=NUM_METHOD,
                                  threshold=COLUMN_THRESHOLD))
    snapshot = Report(metrics).run(Dataset.from_pandas(cur, data_definition=definition),
                                   Dataset.from_pandas(ref, data_definition=definition))
    results = _column_results(snapshot.dict())
    _save_html(snapshot, path)
    per_column = {c: results[c] for c in columns}
    drifted = [c for c, r in per_column.items() if r.drifted]
    return DriftResult(
        path=path, share=len(drifted) / len(columns), drifted=drifted, columns=per_column,
        prediction=results.get(PREDICTION) if with_prediction else None,
        reference_rows=len(ref), current_rows=len(cur), skipped=skipped,
    )


def _column_results(report: dict) -> dict[str, ColumnDrift]:
    """One ColumnDrift per ValueDrift metric of the snapshot's dict. Both methods used here
    are distances: a column drifted iff its score reaches the threshold."""
    out = {}
    for metric in report["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith(":ValueDrift"):
            score, threshold = float(metric["value"]), float(config["threshold"])
            out[config["column"]] = ColumnDrift(config["column"], str(config["method"]), score,
                                                threshold, score >= threshold)
    return out


def _save_html(snapshot, path: Path) -> None:
    with atomic_path(path) as tmp:
        snapshot.save_html(str(tmp))


def scored_days(lake: Path) -> list[dt.date]:
    """The days the scorer has persisted feature rows for (`features/scored/date=<day>/`)."""
    root = lake / "features" / "scored"
    days = [p.name.removeprefix("date=") for p in root.glob("date=*") if any(p.glob("*.parquet"))]
    return sorted(dt.date.fromisoformat(d) for d in days)


def read_scored(lake: Path, day: dt.date | None = None) -> tuple[dt.date, pl.DataFrame]:
    """One day's scored feature rows (every hourly file; default the latest day). Raises
    FileNotFoundError, naming the folder, when nothing has been scored."""
    days = scored_days(lake)
    if not days or (day is not None and day not in days):
        wanted = f"date={day.isoformat()}" if day else "date=*"
        raise FileNotFoundError(f"no scored features in {lake / 'features' / 'scored' / wanted}")
    day = day or days[-1]
    files = sorted((lake / "features" / "scored" / f"date={day.isoformat()}").glob("*.parquet"))
    rows = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
    if "as_of" in rows.columns:  # hourly scores of one day share their whole-day features:
        rows = rows.sort("as_of").unique(subset=["battery_id"], keep="last",  # one per battery
                                         maintain_order=True)
    return day, rows


def training_reference(training_set: pl.DataFrame, train_ids: Sequence[str] | None
                       ) -> pl.DataFrame:
    """The champion's training rows: the training set restricted to its train batteries
    (validation, calibration and test batteries were never fitted on); all rows if the
    split is unknown."""
    if train_ids is None:
        return training_set
    return training_set.filter(pl.col("battery_id").is_in(list(train_ids)))


def champion_train_batteries(tracking_uri: str) -> list[str] | None:
    """The train split the champion's run logged (`splits/battery_ids.json`), or None when
    no champion is registered (or the store does not exist yet)."""
    prefix = "sqlite:///"
    if tracking_uri.startswith(prefix) and not Path(tracking_uri.removeprefix(prefix)).exists():
        return None
    import mlflow
    from mlflow.exceptions import MlflowException

    from models.registry import CHAMPION, MODEL_NAME

    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        run_id = client.get_model_version_by_alias(MODEL_NAME, CHAMPION).run_id
    except MlflowException:
        return None
    mlflow.set_tracking_uri(tracking_uri)
    splits = mlflow.artifacts.load_dict(f"runs:/{run_id}/splits/battery_ids.json")
    return list(splits["train"])
