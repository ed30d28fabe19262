"""Fleet scoring from the daily store (models.daily_store): the numbers `rul predict` gives,
for every battery in service, at any hour of the simulated clock, without re-reading the
telemetry history.

An hour's scores are those of `rul predict --as-of <hour>`: like it, the features use whole
UTC days (the moment is floored to 00:00 UTC, as the training snapshots were taken), and so do
the status checks (too little history, missing or stuck measurements, a week of silence).
Every hour of a day therefore carries the same numbers until the day is complete; the hour
says when they were served.

One moment is scored with `POINT` windows from the last LOOKBACK_DAYS of the store (memory
and time independent of the history's length); many days at once (a backfill) with `ROLLING`
windows over the whole store in one pass. Both give the features of `snapshot_features`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from models import daily_features as df_
from models.capacity import c10_soh, measurement_means
from models.daily_features import DAY, KEY
from models.daily_rows import BASELINE, REFERENCE_STEP_S
from models.daily_store import (
    latest_before,
    read_days,
    rows_at,
    scan_days,
    store_dir,
    write_atomic,
)
from models.features import static_features
from models.laws import MEASUREMENT_MEANS
from models.predict import (
    DRIVERS,
    INSUFFICIENT,
    MAX_SILENCE,
    MIN_PRESENT_SHARE,
    OK,
    QUANTILES,
    RECENT,
    STALE,
    in_service,
)
from simulator.schema import TS
from simulator.thresholds import Thresholds, load_thresholds

# Windows end at a battery's last day: one silent for up to 5 weeks still gets whole windows
LOOKBACK_DAYS = df_.LONGEST_WINDOW + 35
WIDE_DAYS = max(df_.WINDOWS.values()) + 7  # days of the short-window columns read
RECENT_DAYS = RECENT.days
LONG = [KEY, "day_no", "resistance"]  # the year-long windows (r_slope_180d/365d) read these
SHORT = [KEY, DAY, "day_no", "rows", "temp_sum", "temp_max", "hours_above_30", "hours_above_35",
         "arrhenius_hours", "float_dev_sum", "float_rows", "float_current_sum", "resistance",
         "conductance", "n_voltage", "n_current", "n_temp", "has_resistance", "v_min", "v_max",
         "t_min", "t_max", "ohm_min", "ohm_max"]
PER_ROW = {"voltage_v": "n_voltage", "current_a": "n_current", "temperature_c": "n_temp"}
PREDICT_ROWS = 200_000  # rows per model call: a long backfill's SHAP values stay in memory
RISK = {"ok": "healthy"}  # simulator.thresholds says "ok" for a healthy P10
OUTPUT = {
    "battery_id": pl.String, "site_id": pl.String, "string_id": pl.String, "as_of": TS,
    "features_as_of": TS, "scored_at": TS, **dict.fromkeys(QUANTILES, pl.Float64),
    "risk_level": pl.String, "status": pl.String, "model_version": pl.Int64,
    **dict.fromkeys(DRIVERS, pl.String),
}


def midnight(moment: dt.datetime) -> dt.datetime:
    """00:00 UTC of the moment's day: the features' as-of (whole days, as `rul predict`)."""
    return moment.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def recent_quality(w: df_.Windows) -> pl.Expr:
    """`models.predict.measurement_quality`'s RECENT checks from daily rows: every per-row
    measurement on MIN_PRESENT_SHARE of the readings, the daily ohmic reading on that share of
    the days with readings, none of NEVER_CONSTANT flat; null without readings in the window."""
    n, share = RECENT_DAYS, MIN_PRESENT_SHARE
    rows = w.sum(pl.col("rows"), n)
    days = w.sum((pl.col("rows") > 0).cast(pl.Float64), n)
    return pl.when(days > 0).then(pl.all_horizontal(
        *[w.sum(pl.col(c), n) >= share * rows for c in PER_ROW.values()],
        w.sum(pl.col("has_resistance").cast(pl.Float64), n) >= share * days,
        *[w.max(pl.col(f"{c}_max"), n) > w.min(pl.col(f"{c}_min"), n) for c in ("v", "t", "ohm")]))


def _history_ok() -> pl.Expr:
    return pl.all_horizontal(pl.col(f"life_{c}") >= MIN_PRESENT_SHARE * pl.col("life_rows")
                             for c in PER_ROW.values())


def features_at(lake: Path, batteries: pl.DataFrame, maintenance: pl.DataFrame | None,
                as_of: dt.datetime) -> pl.DataFrame:
    """`models.predict.scoring_frame` at `as_of` (floored to 00:00 UTC) from the store: the
    snapshot features of every battery in service, with its status. Reads the last
    LOOKBACK_DAYS of the store in streaming passes (a few columns beyond WIDE_DAYS)."""
    x = midnight(as_of)
    day, before = x.date(), x.date() - dt.timedelta(days=1)
    long = scan_days(lake, day - dt.timedelta(days=LOOKBACK_DAYS), before)
    short = scan_days(lake, day - dt.timedelta(days=WIDE_DAYS), before)
    if long is None or short is None:
        raise LookupError(f"the daily store under {lake} has no recent day before {day}")
    active = in_service(batteries, x)
    latest = rows_at(lake, long.group_by(KEY).agg(pl.col(DAY).max()).collect(
        engine="streaming"))
    gone = active.join(latest, on=KEY, how="anti")[KEY]
    if gone.len():  # silent for longer than the lookback (stale): their last row still counts
        older = latest_before(lake, day - dt.timedelta(days=LOOKBACK_DAYS), gone)
        latest = pl.concat([latest, older.select(latest.columns)]) if older.height else latest
    tests = c10_soh(maintenance, batteries) if maintenance is not None else None
    cached = pl.read_parquet(store_dir(lake) / "capacity_test_days.parquet")
    deep = long.filter(pl.col("discharge_x").is_not_null()).select(
        KEY, DAY, "r_30d", "discharge_x").collect(engine="streaming")
    snaps = df_.point_features(short.select(SHORT), long.select(LONG), latest, x).join(
        _measurement_means(deep, latest, tests, cached), on=KEY, how="left")
    feats = static_features(snaps.drop(BASELINE).join(active.select(KEY), on=KEY),
                            latest.select(KEY, *BASELINE), cached, active, tests,
                            REFERENCE_STEP_S)
    age = (pl.lit(before) - pl.col(DAY).dt.date()).dt.total_days()
    recent = short.select(SHORT).with_columns(**{df_.AGE: age}).filter(
        pl.col(df_.AGE) < RECENT_DAYS).group_by(KEY).agg(recent_ok=recent_quality(df_.POINT))
    quality = latest.select(KEY, last_ts="life_last_ts", history_ok=_history_ok()).join(
        recent.collect(engine="streaming"), on=KEY, how="left")
    return _with_status(active, feats.drop("ts"), quality, x).with_columns(
        ts=pl.lit(x).cast(TS))


def features_on(lake: Path, batteries: pl.DataFrame, maintenance: pl.DataFrame | None,
                days: list[dt.date]) -> pl.DataFrame:
    """`features_at` at 00:00 UTC of each of `days` in one pass over the store (backfills):
    ROLLING windows at every stored day, then each battery's last row before each day."""
    until = max(days) - dt.timedelta(days=1)
    rows = read_days(lake, dt.date.min, until)
    if rows.is_empty():
        raise LookupError(f"the daily store under {lake} has no day before {max(days)}")
    tests = c10_soh(maintenance, batteries) if maintenance is not None else None
    cached = pl.read_parquet(store_dir(lake) / "capacity_test_days.parquet")
    grid = df_.day_grid(rows).join(cached.rename({"r_30d": "_r30"}), on=[KEY, DAY], how="left")
    grid = grid.with_columns(r_30d=pl.coalesce("r_30d", "_r30")).drop("_r30")
    means = measurement_means(grid.select(KEY, DAY, "r_30d", "discharge_x"), tests)
    data = df_.with_window_features(grid).drop("ts").join(
        means.select(KEY, DAY, *MEASUREMENT_MEANS), on=[KEY, DAY]).filter(
        pl.col("last_ts").is_not_null())
    moments = pl.DataFrame({"ts": [dt.datetime.combine(d, dt.time(), dt.UTC) for d in days]},
                           schema={"ts": TS})
    pairs = batteries.join(moments, how="cross").filter(
        (pl.col("install_date") < pl.col("ts").dt.date())
        & (pl.col("removed_date").is_null() | (pl.col("removed_date") >= pl.col("ts").dt.date()))
        if "removed_date" in batteries.columns else pl.col("install_date") < pl.col("ts").dt.date()
    ).select(KEY, "ts", _before=pl.col("ts") - pl.duration(days=1)).sort("_before")
    snaps = pairs.join_asof(data.sort(DAY), left_on="_before", right_on=DAY, by=KEY,
                            strategy="backward", check_sortedness=False).filter(
        pl.col(DAY).is_not_null())
    latest = rows.sort(DAY).group_by(KEY).last().select(KEY, *BASELINE)
    feats = static_features(snaps.drop(BASELINE, "_before"), latest, cached, batteries, tests,
                            REFERENCE_STEP_S)
    extended = df_.day_grid(rows, until=pl.lit(until).cast(pl.Datetime("us", "UTC")))
    recent = extended.with_columns(recent_ok=recent_quality(df_.ROLLING)).select(
        KEY, _before=DAY, recent_ok="recent_ok")
    quality = pairs.join(snaps.select(KEY, "ts", last_ts="life_last_ts",
                                      history_ok=_history_ok()), on=[KEY, "ts"], how="left"
                         ).join(recent, on=[KEY, "_before"], how="left").drop("_before")
    return _with_status(pairs.select(KEY, "ts"), feats, quality, None)


def _measurement_means(deep: pl.DataFrame, latest: pl.DataFrame, tests: pl.DataFrame | None,
                       cached: pl.DataFrame) -> pl.DataFrame:
    """MEASUREMENT_MEANS at each battery's last day: `models.capacity.measurement_means` on the
    only days of its window that weigh in (deep discharges `deep`, capacity tests `cached`)
    and the last day; a rolling sum over those rows is the sum over the window."""
    last = latest.select(KEY, _last=DAY)
    rows = pl.concat([deep, cached.with_columns(discharge_x=pl.lit(None, dtype=pl.Float64)),
                      latest.select(KEY, DAY, "r_30d", "discharge_x")], how="vertical_relaxed")
    rows = rows.join(last, on=KEY).filter(
        (pl.col(DAY) <= pl.col("_last"))
        & (pl.col(DAY) > pl.col("_last") - pl.duration(days=df_.LONGEST_WINDOW)))
    compact = rows.group_by(KEY, DAY).agg(pl.col("r_30d").drop_nulls().first(),
                                          pl.col("discharge_x").drop_nulls().first())
    return measurement_means(compact.sort(KEY, DAY), tests).join(
        last, left_on=[KEY, DAY], right_on=[KEY, "_last"]).select(KEY, *MEASUREMENT_MEANS)


def _with_status(active: pl.DataFrame, feats: pl.DataFrame, quality: pl.DataFrame,
                 x: dt.datetime | None) -> pl.DataFrame:
    """`models.predict.scoring_frame`'s status rule on features and quality (per `ts` when
    `x` is None)."""
    keys = [KEY] if x is not None else [KEY, "ts"]
    limit = pl.lit(x - MAX_SILENCE).cast(TS) if x is not None else pl.col("ts") - MAX_SILENCE
    measured = pl.col("history_ok") & pl.col("recent_ok")
    usable = pl.col("sufficient_history").fill_null(False) & measured.fill_null(False)
    return (active.select(keys).join(feats, on=keys, how="left")
            .join(quality, on=keys, how="left")
            .with_columns(status=pl.when(pl.col("last_ts") < limit).then(pl.lit(STALE))
                          .when(usable).then(pl.lit(OK)).otherwise(pl.lit(INSUFFICIENT)))
            .drop("last_ts", "history_ok", "recent_ok").sort(keys))


@dataclass
class Scores:
    """One scored moment: the prediction rows and the feature rows they were scored from."""

    as_of: dt.datetime
    predictions: pl.DataFrame
    features: pl.DataFrame


def score_hours(lake: Path, batteries: pl.DataFrame, maintenance: pl.DataFrame | None,
                model: Any, hours: list[dt.datetime], *, thresholds: Thresholds | None = None,
                scored_at: dt.datetime | None = None, point_days: int = 3) -> list[Scores]:
    """Score every battery in service at each hour: up to `point_days` distinct days from the
    store's last windows (`features_at`), more in one pass (`features_on`). `model` is a
    `models.pyfunc.LoadedModel` (or anything with its `predict`, `version` and `model`)."""
    thresholds = thresholds or load_thresholds()
    scored_at = scored_at or dt.datetime.now(dt.UTC)
    days = sorted({midnight(h).date() for h in hours})
    if len(days) <= point_days:
        frames = pl.concat([features_at(lake, batteries, maintenance,
                                        dt.datetime.combine(d, dt.time(), dt.UTC))
                            for d in days], how="diagonal_relaxed")
    else:
        frames = features_on(lake, batteries, maintenance, days)
    scored = _score(frames, model, thresholds)
    info = batteries.select(KEY, "site_id", "string_id")
    out = []
    for hour in sorted(hours):
        x = midnight(hour)
        rows = scored.filter(pl.col("ts") == x)
        preds = rows.join(info, on=KEY, how="left").with_columns(
            as_of=pl.lit(hour).cast(TS), features_as_of=pl.col("ts"),
            scored_at=pl.lit(scored_at).cast(TS), model_version=pl.lit(model.version))
        preds = preds.select([pl.col(c).cast(t) for c, t in OUTPUT.items()]).sort(KEY)
        feats = frames.filter((pl.col("ts") == x) & (pl.col("status") == OK)).join(
            rows.select(KEY, "rul_p50_days"), on=KEY).with_columns(as_of=pl.lit(hour).cast(TS))
        out.append(Scores(hour, preds, feats.select(KEY, "as_of", "site_id", *_inputs(model,
                                                                                     feats),
                                                    "rul_p50_days").sort(KEY)))
    return out


def _inputs(model: Any, frame: pl.DataFrame) -> list[str]:
    """The model's categorical and feature columns present in `frame`."""
    inner = model.model
    return [c for c in dict.fromkeys([*inner.categorical, *inner.features])
            if c in frame.columns and c != "site_id"]


def _score(frames: pl.DataFrame, model: Any, thresholds: Thresholds) -> pl.DataFrame:
    """`models.predict.score_frame` over many moments at once: quantiles, drivers and the P10's
    risk level (healthy / warning / critical) for the rows whose status is ok."""
    ok = frames.filter(pl.col("status") == OK)
    empty = pl.DataFrame(schema={**dict.fromkeys(QUANTILES, pl.Float64),
                                 **dict.fromkeys(DRIVERS, pl.String)})
    result = pl.concat([empty, *(model.predict(ok.slice(i, PREDICT_ROWS))
                                 for i in range(0, ok.height, PREDICT_ROWS))],
                       how="vertical_relaxed")
    scored = pl.concat([ok.select(KEY, "ts"), result.select(QUANTILES).cast(pl.Float64),
                        result.select(DRIVERS).cast(pl.String)], how="horizontal")
    risk = [RISK.get(level, level) for level in map(thresholds.risk_level,
                                                    scored["rul_p10_days"])]
    scored = scored.with_columns(risk_level=pl.Series(risk, dtype=pl.String))
    return frames.select(KEY, "ts", "status").join(scored, on=[KEY, "ts"], how="left")


def hour_paths(lake: Path, hour: dt.datetime) -> tuple[Path, Path]:
    """Where an hour's predictions and scored feature rows live (one file each per hour)."""
    name = Path(f"date={hour:%Y-%m-%d}") / f"{hour:%H}.parquet"
    return lake / "rul_predictions" / name, lake / "features" / "scored" / name


def write_scores(lake: Path, scores: Scores) -> tuple[Path, Path]:
    """Write an hour's files atomically: re-scoring an hour replaces them."""
    predictions, features = hour_paths(lake, scores.as_of)
    write_atomic(scores.predictions, predictions)
    write_atomic(scores.features, features)
    return predictions, features
