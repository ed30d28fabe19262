"""`rul predict` and `models.predict` on a small simulated fleet with a champion trained and
registered in the test: output contract, ordered quantiles, no numbers without enough
history, risk levels from the one threshold config, CSV and Parquet, reported repairs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from champion import Champion, shared_champion
from polars.testing import assert_frame_equal

from models.dataset import training_set
from models.features import snapshot_features
from models.predict import INSUFFICIENT, OK, OUTPUT, STALE, in_service, predict_batteries
from models.registry import load_model
from pipelines.cli import main
from simulator.thresholds import load_thresholds

P10, P50, P90 = "rul_p10_days", "rul_p50_days", "rul_p90_days"


@pytest.fixture(scope="module")
def champion(tmp_path_factory) -> Champion:
    return shared_champion(tmp_path_factory)


@pytest.fixture(scope="module")
def tables(champion) -> dict[str, pl.DataFrame]:
    return {t: pl.read_parquet(champion.lake / t / "*.parquet")
            for t in ("telemetry", "batteries", "maintenance_events")}


@pytest.fixture
def env(champion, monkeypatch) -> Champion:
    for key, value in champion.env.items():
        monkeypatch.setenv(key, value)
    return champion


def write(frame: pl.DataFrame, path: Path) -> Path:
    frame.write_csv(path) if path.suffix == ".csv" else frame.write_parquet(path)
    return path


def run(tmp_path: Path, tables: dict[str, pl.DataFrame], ext: str = ".parquet",
        out: str = "out.parquet", *extra: str) -> pl.DataFrame:
    paths = {name: write(frame, tmp_path / f"{name}{ext}") for name, frame in tables.items()}
    args = ["predict", "--telemetry", str(paths["telemetry"]),
            "--batteries", str(paths["batteries"]), "--out", str(tmp_path / out), *extra]
    if "maintenance_events" in paths:
        args += ["--maintenance", str(paths["maintenance_events"])]
    assert main(args) == 0
    path = tmp_path / out
    return pl.read_csv(path, schema=OUTPUT) if path.suffix == ".csv" else pl.read_parquet(path)


def test_output_contract_and_risk_levels(env, tables, tmp_path, capsys):
    result = run(tmp_path, tables)

    assert result.schema == pl.Schema(OUTPUT)
    in_service = tables["batteries"].filter(pl.col("removed_date").is_null())
    assert sorted(result["battery_id"]) == sorted(in_service["battery_id"])
    scored = result.filter(pl.col("status") == OK)
    assert scored.height > 0.9 * result.height
    assert (scored[P10] <= scored[P50]).all() and (scored[P50] <= scored[P90]).all()
    assert (scored[P10] >= 0).all()
    thresholds = load_thresholds()
    assert scored["risk_level"].to_list() == [thresholds.risk_level(p) for p in scored[P10]]
    assert scored.select(pl.col("driver_1", "driver_2", "driver_3").is_not_null().all()).row(0)
    assert "scored" in capsys.readouterr().out


def test_same_numbers_as_the_model_on_snapshot_features(champion, tables):
    """The function behind `rul predict` scores the snapshot the pipeline would build."""
    model = load_model(tracking_uri=champion.tracking_uri)
    as_of = dt.datetime(2024, 9, 1, tzinfo=dt.UTC)
    result = predict_batteries(tables["telemetry"], tables["batteries"],
                               tables["maintenance_events"], model, as_of)
    feats = snapshot_features(tables["telemetry"], in_service(tables["batteries"], as_of),
                              tables["maintenance_events"], as_of=as_of)
    expected = model.predict(feats.filter("sufficient_history")).with_columns(
        battery_id=feats.filter("sufficient_history")["battery_id"])
    got = result.filter(pl.col("status") == OK).select("battery_id", P10, P50, P90)
    joined = got.join(expected, on="battery_id", suffix="_direct")
    assert joined.height == got.height > 0
    for q in (P10, P50, P90):
        assert (joined[q] - joined[f"{q}_direct"]).abs().max() < 1e-6


def test_too_little_history_gets_no_numbers(env, tables, tmp_path):
    """One battery with only five days of readings, one with none: statuses, NULL numbers."""
    telemetry = tables["telemetry"]
    short, silent = sorted(tables["batteries"].filter(
        pl.col("removed_date").is_null())["battery_id"])[:2]
    end = telemetry["ts"].max()
    telemetry = telemetry.filter(
        (pl.col("battery_id") != silent)
        & ((pl.col("battery_id") != short) | (pl.col("ts") > end - dt.timedelta(days=5))))

    result = run(tmp_path, {**tables, "telemetry": telemetry})

    odd = result.filter(pl.col("battery_id").is_in([short, silent]))
    assert odd["status"].to_list() == [INSUFFICIENT, INSUFFICIENT]
    numbers = [P10, P50, P90, "risk_level", "driver_1", "driver_2", "driver_3"]
    assert odd.select(pl.col(numbers).is_null().all()).row(0) == (True,) * len(numbers)
    assert result.filter(pl.col("status") == OK).height == result.height - 2


def test_missing_or_stuck_measurements_get_no_numbers(env, tables, tmp_path):
    """A battery whose voltage is missing for most of its last month, one whose temperature
    sensor is stuck for that month, one with a resistance reading on few of its days, one
    whose temperature is missing for most of its history before that month: no numbers for
    them, the others scored as before."""
    telemetry = tables["telemetry"]
    gappy, stuck, unread, unseen = sorted(tables["batteries"].filter(
        pl.col("removed_date").is_null())["battery_id"])[2:6]
    month = pl.col("ts") > telemetry["ts"].max() - dt.timedelta(days=30)
    one = pl.col("battery_id")
    telemetry = telemetry.with_columns(
        voltage_v=pl.when((one == gappy) & month & (pl.col("ts").dt.hour() < 18))
        .then(None).otherwise("voltage_v"),
        temperature_c=pl.when((one == stuck) & month)
        .then(pl.col("temperature_c").filter(one == stuck).first())
        .when((one == unseen) & ~month & (pl.col("ts").dt.hour() < 20)).then(None)
        .otherwise("temperature_c"),
        resistance_mohm=pl.when((one == unread) & (pl.col("ts").dt.day() > 5))
        .then(None).otherwise("resistance_mohm"))

    result = run(tmp_path, {**tables, "telemetry": telemetry})

    odd = result.filter(pl.col("battery_id").is_in([gappy, stuck, unread, unseen]))
    assert odd["status"].to_list() == [INSUFFICIENT] * 4
    assert odd.select(pl.col(P10, P50, P90, "risk_level").is_null().all()).row(0) == (True,) * 4
    assert result.filter(pl.col("status") == OK).height == result.height - 4


def test_as_of_after_the_data_is_stale_not_guessed(env, tables, tmp_path):
    later = (tables["telemetry"]["ts"].max() + dt.timedelta(days=30)).date().isoformat()
    result = run(tmp_path, tables, ".parquet", "out.parquet", "--as-of", later)
    assert set(result["status"]) == {STALE}
    assert result[P50].null_count() == result.height


def test_csv_and_parquet_give_the_same_predictions(env, tables, tmp_path):
    from_parquet = run(tmp_path, tables)
    from_csv = run(tmp_path, tables, ".csv", "out.csv")
    assert_frame_equal(from_csv, from_parquet)


def test_without_maintenance_still_predicts(env, tables, tmp_path):
    result = run(tmp_path, {k: v for k, v in tables.items() if k != "maintenance_events"})
    assert result.filter(pl.col("status") == OK).height > 0.9 * result.height


def test_intervals_without_maintenance_cover_held_out_batteries(champion, tables):
    """Weekly snapshots of the held-out strings' batteries built from telemetry and batteries
    alone, as `rul predict` without --maintenance sees them: the P10-P90 interval covers their
    true RUL about as often as promised (measured: 0.44 when eight calibration batteries
    could narrow the interval, 0.73 since; nominal 0.80)."""
    model = load_model(tracking_uri=champion.tracking_uri).model
    truth = pl.read_parquet(champion.lake / "battery_truth" / "*.parquet")
    rows = training_set(snapshot_features(tables["telemetry"], tables["batteries"], None), truth,
                        tables["batteries"]).filter(pl.col("battery_id").is_in(
                            champion.test_batteries))
    predicted = model.predict(rows)
    y = rows["true_rul_days"]
    covered = ((y >= predicted[P10]) & (y <= predicted[P90])).mean()
    assert rows["battery_id"].n_unique() >= 10
    assert covered >= model.conformal["nominal_coverage"] - 0.1


def test_repairs_are_made_and_reported(env, tables, tmp_path, capsys):
    clean = run(tmp_path, tables)
    capsys.readouterr()
    telemetry = tables["telemetry"]
    first = sorted(telemetry["battery_id"].unique())[:3]
    shuffled = telemetry.filter(pl.col("battery_id").is_in(first)).sample(fraction=1.0, shuffle=True, seed=1)
    messy = pl.concat([telemetry.filter(~pl.col("battery_id").is_in(first)), shuffled,
                       telemetry.head(12)])
    naive = messy.with_columns(pl.col("ts").dt.replace_time_zone(None))

    repaired = run(tmp_path, {**tables, "telemetry": naive})

    err = capsys.readouterr().err
    assert "repaired: dropped 12 duplicate rows; sorted 3 batteries" in err
    assert "ts: timestamps have no time zone; read as UTC" in err
    assert_frame_equal(repaired, clean)
