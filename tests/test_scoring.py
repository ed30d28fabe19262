"""Hourly fleet scoring (models.scoring, assets.scoring): the numbers and statuses of
`rul predict`, one file per simulated hour replaced when re-scored, a single-run backfill
over many days, and the two sensors (live telemetry passing an hour; the champion alias
moving), on the champion fixture's fleet and a real SQLite MLflow store."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from champion import Champion, shared_champion

from assets.resources.mlflow_store import MlflowStore
from assets.resources.storage import LakeStorage
from assets.scoring import (
    RUL_PREDICTIONS,
    SCORING_ASSETS,
    SCORING_JOBS,
    SCORING_SENSORS,
)
from assets.scoring.partitions import SIM_HOURS, hour_key, key_hour
from assets.scoring.predictions import rul_predictions
from assets.scoring.sensors import champion_sensor, sim_hour_sensor
from core.settings import sqlite_uri
from models.daily_store import update_store
from models.predict import predict_batteries
from models.registry import MODEL_NAME, load_model, promote
from models.scoring import OUTPUT, hour_paths, score_hours
from simulator.thresholds import load_thresholds

END = dt.datetime(2025, 3, 26, tzinfo=dt.UTC)  # midnight after the fixture's last reading
HOUR = END + dt.timedelta(hours=5)
TABLES = ("telemetry", "batteries", "maintenance_events")
RISKS = {"healthy", "warning", "critical"}
QUANTILES = ["rul_p10_days", "rul_p50_days", "rul_p90_days"]


@pytest.fixture(scope="module")
def champion(tmp_path_factory) -> Champion:
    return shared_champion(tmp_path_factory)


@pytest.fixture(scope="module")
def tables(champion) -> dict[str, pl.DataFrame]:
    return {t: pl.read_parquet(champion.lake / t / "*.parquet") for t in TABLES}


@pytest.fixture(scope="module")
def model(champion):
    return load_model(tracking_uri=champion.tracking_uri)


def copy_lake(champion: Champion, root: Path) -> Path:
    """A private copy of the fixture's lake (scoring writes into the lake)."""
    for table in TABLES:
        shutil.copytree(champion.lake / table, root / "data" / "lake" / table)
    return root / "data"


@pytest.fixture(scope="module")
def data_dir(champion, tmp_path_factory) -> Path:
    data = copy_lake(champion, tmp_path_factory.mktemp("scoring"))
    update_store(data / "lake")
    return data


def resources(data: Path, tracking_uri: str) -> dict:
    return {"storage": LakeStorage(base_dir=str(data)),
            "mlflow": MlflowStore(tracking_uri=tracking_uri, ui_url="http://127.0.0.1:5000")}


def test_an_hour_scores_what_rul_predict_scores(data_dir, tables, model):
    """Every battery in service, the numbers, statuses and drivers of `predict_batteries` at
    the hour's 00:00 UTC, the P10's risk level with healthy for the thresholds' "ok"."""
    (scores,) = score_hours(data_dir / "lake", tables["batteries"],
                            tables["maintenance_events"], model, [HOUR])
    got = scores.predictions
    want = predict_batteries(tables["telemetry"], tables["batteries"],
                             tables["maintenance_events"], model, END)
    assert got.columns == list(OUTPUT) and got["battery_id"].to_list() == want["battery_id"].to_list()
    assert got["status"].to_list() == want["status"].to_list()
    assert (got["status"] == "ok").sum() > 0.9 * got.height
    for q in QUANTILES:
        np.testing.assert_allclose(got[q].to_numpy(), want[q].to_numpy(), rtol=1e-6)
    assert got.select("driver_1", "driver_2", "driver_3").equals(
        want.select("driver_1", "driver_2", "driver_3"))
    thresholds = load_thresholds()
    scored = got.filter(pl.col("status") == "ok")
    assert scored["risk_level"].to_list() == [
        {"ok": "healthy"}.get(r, r) for r in map(thresholds.risk_level, scored["rul_p10_days"])]
    assert set(scored["risk_level"]) <= RISKS
    assert (got["as_of"] == HOUR).all() and (got["features_as_of"] == END).all()
    features = scores.features
    assert features.height == scored.height
    assert {"battery_id", "as_of", "site_id", "rul_p50_days", *model.model.features} \
        >= set(features.columns) >= {"battery_id", "as_of", "rul_p50_days", "r_now"}


def test_materialize_an_hour_then_replace_it(champion, tmp_path):
    data = copy_lake(champion, tmp_path)
    key = hour_key(HOUR)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(SIM_HOURS.name, [key])
    first = dg.materialize([rul_predictions], instance=instance, partition_key=key,
                           resources=resources(data, champion.tracking_uri))
    assert first.success
    predictions, features = hour_paths(data / "lake", HOUR)
    assert predictions == data / "lake" / "rul_predictions" / "date=2025-03-26" / "05.parquet"
    frame = pl.read_parquet(predictions)
    assert frame.schema == pl.Schema(OUTPUT)
    assert set(frame["risk_level"].drop_nulls()) <= RISKS and frame["risk_level"].null_count() \
        == (frame["status"] != "ok").sum()
    assert set(frame["status"]) <= {"ok", "insufficient_data", "stale_data"}
    assert (frame["model_version"] == champion.version).all() and (frame["as_of"] == HOUR).all()
    assert pl.read_parquet(features).height == (frame["status"] == "ok").sum()
    (event,) = first.asset_materializations_for_node("lake__rul_predictions")
    assert event.metadata["dagster/row_count"].value == frame.height
    assert event.metadata["model_version"].value == champion.version

    again = dg.materialize([rul_predictions], instance=instance, partition_key=key,
                           resources=resources(data, champion.tracking_uri))
    assert again.success
    assert sorted(p.name for p in predictions.parent.iterdir()) == ["05.parquet"]
    replaced = pl.read_parquet(predictions)
    assert replaced.height == frame.height
    assert replaced["scored_at"].min() > frame["scored_at"].max()
    assert replaced.drop("scored_at").equals(frame.drop("scored_at"))


def test_one_run_backfills_many_days(champion, tmp_path, tables, model, data_dir):
    """Daily keys of the history scored in one run (BackfillPolicy.single_run), here through
    the one-pass path (point_days=1), with the numbers of scoring each day on its own."""
    data = copy_lake(champion, tmp_path)
    days = [END - dt.timedelta(days=n) for n in (40, 20, 0)]
    keys = [hour_key(d) for d in days]
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(SIM_HOURS.name, keys)
    result = dg.materialize(
        [rul_predictions], instance=instance,
        resources=resources(data, champion.tracking_uri),
        run_config={"ops": {"lake__rul_predictions": {"config": {"point_days": 1}}}},
        tags={"dagster/asset_partition_range_start": keys[0],
              "dagster/asset_partition_range_end": keys[-1]})
    assert result.success
    assert instance.get_materialized_partitions(RUL_PREDICTIONS) == set(keys)
    for day in days:
        (alone,) = score_hours(data_dir / "lake", tables["batteries"],
                               tables["maintenance_events"], model, [day])
        got = pl.read_parquet(hour_paths(data / "lake", day)[0])
        assert got["status"].to_list() == alone.predictions["status"].to_list()
        for q in QUANTILES:
            np.testing.assert_allclose(got[q].to_numpy(), alone.predictions[q].to_numpy(),
                                       rtol=1e-6)


def publish(lake: Path, readings: pl.DataFrame, name: str) -> None:
    for (day,), part in readings.with_columns(_d=pl.col("ts").dt.date()).partition_by(
            "_d", as_dict=True).items():
        folder = lake / "telemetry_live" / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        part.drop("_d").write_parquet(folder / f"{name}.parquet")


def test_sim_hour_sensor_adds_hours_as_live_telemetry_passes_them(tmp_path, tables):
    data = tmp_path / "data"
    context = dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(),
                                      resources={"storage": LakeStorage(base_dir=str(data))})
    assert isinstance(sim_hour_sensor(context), dg.SkipReason)  # no live folder yet
    last_day = tables["telemetry"].filter(pl.col("ts") >= END - dt.timedelta(days=1))
    live = last_day.with_columns(pl.col("ts") + dt.timedelta(days=1))  # continues the history
    publish(data / "lake", live.filter(pl.col("ts") < END + dt.timedelta(hours=2, minutes=30)),
            "batch-1")
    result = sim_hour_sensor(context)
    expected = [hour_key(END + dt.timedelta(hours=h)) for h in range(3)]
    assert [r.partition_key for r in result.run_requests] == expected
    assert [r.run_key for r in result.run_requests] == [f"sim-hour-{k}" for k in expected]
    assert result.dynamic_partitions_requests[0].partition_keys == expected
    assert result.cursor == expected[-1]

    publish(data / "lake", live.filter(pl.col("ts").is_between(
        END + dt.timedelta(hours=3), END + dt.timedelta(hours=4, minutes=10))), "batch-2")
    context = dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(),
                                      cursor=result.cursor,
                                      resources={"storage": LakeStorage(base_dir=str(data))})
    nxt = sim_hour_sensor(context)
    assert [r.partition_key for r in nxt.run_requests] == [hour_key(END + dt.timedelta(hours=h))
                                                          for h in (3, 4)]
    context = dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), cursor=nxt.cursor,
                                      resources={"storage": LakeStorage(base_dir=str(data))})
    assert isinstance(sim_hour_sensor(context), dg.SkipReason)  # 05:00 not reached


def test_champion_sensor_rescores_the_latest_hour_when_the_alias_moves(champion, tmp_path):
    from mlflow import MlflowClient

    shutil.copytree(champion.data_dir / "mlflow", tmp_path / "mlflow")
    uri = sqlite_uri(tmp_path / "mlflow" / "mlflow.db")  # a copy: the fixture's store is shared
    instance = dg.DagsterInstance.ephemeral()
    keys = [hour_key(HOUR), hour_key(END - dt.timedelta(days=1))]  # newest added first
    instance.add_dynamic_partitions(SIM_HOURS.name, keys)
    for key in keys:
        instance.report_runless_asset_event(dg.AssetMaterialization(RUL_PREDICTIONS,
                                                                    partition=key))

    def evaluate(cursor: str | None):
        return champion_sensor(dg.build_sensor_context(
            instance=instance, cursor=cursor,
            resources={"mlflow": MlflowStore(tracking_uri=uri, ui_url="http://x")}))
    first = evaluate(None)
    assert first.cursor == str(champion.version) and not first.run_requests
    assert isinstance(evaluate(first.cursor), dg.SkipReason)

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    current = client.get_model_version(MODEL_NAME, str(champion.version))
    new = client.create_model_version(MODEL_NAME, current.source, run_id=current.run_id)
    promote(int(new.version), "test: a new champion", tracking_uri=uri)
    moved = evaluate(first.cursor)
    (request,) = moved.run_requests
    assert request.partition_key == max(keys, key=key_hour) == hour_key(HOUR)
    assert request.run_key == f"champion-v{new.version}-{hour_key(HOUR)}"
    assert moved.cursor == str(new.version)
    assert isinstance(evaluate(moved.cursor), dg.SkipReason)


def test_scoring_definitions_load(tmp_path):
    defs = dg.Definitions(assets=SCORING_ASSETS, jobs=SCORING_JOBS, sensors=SCORING_SENSORS,
                          resources=resources(tmp_path, sqlite_uri(tmp_path / "m.db")))
    dg.Definitions.validate_loadable(defs)
    spec = defs.resolve_assets_def(RUL_PREDICTIONS).specs_by_key[RUL_PREDICTIONS]
    assert spec.group_name == "scoring" and spec.kinds == {"parquet", "duckdb"}
    assert spec.partitions_def == SIM_HOURS and spec.description
    assert rul_predictions.backfill_policy == dg.BackfillPolicy.single_run()
    assert {s.name for s in SCORING_SENSORS} == {"rul_scoring_sim_hours", "rul_scoring_champion"}
