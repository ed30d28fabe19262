"""Drift monitoring: features of a simulated fleet under normal operation do not drift from
the training reference; the same fleet through a +10 degC outdoor heat wave does, and the
temperature features are among the drifted ones.

Both fleets come from the simulator with the same seed; the heat-wave run adds 10 degC to
the outdoor temperature from day 60 on, so the battery rooms warm through the simulator's
own HVAC model (a working HVAC passes 6 % of the outdoor excess, a degraded one 45 %, a
failed one all of it) and every feature is computed from that telemetry. Reference and
current rows are interleaved days of one period (days 91-150): the same distribution unless
the weather changed.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import numpy as np
import polars as pl
import pytest
from conftest import small_fleet_raw

from assets.monitoring import MONITORING_CHECKS, MONITORING_SCHEDULES
from assets.monitoring.drift import DEFAULT_SHARE_THRESHOLD
from assets.resources.mlflow_store import MlflowStore
from assets.resources.storage import LakeStorage
from models import drift
from models.dataset import training_set
from models.features import snapshot_features
from simulator import generate
from simulator.config import parse_fleet
from simulator.environment import SiteEnvironment

START, DAYS, HEAT_FROM_DAY, PERIOD_FROM_DAY = dt.date(2024, 1, 1), 150, 60, 91
BLOCKS = 24  # per string: 48 batteries, enough rows for stable distances
TEMPERATURE = ("temp_mean_", "temp_max_", "arrhenius_hours_", "hours_above_", "site_temp_")


def _simulate(heat_wave: bool, monkeypatch: pytest.MonkeyPatch) -> pl.DataFrame:
    raw = small_fleet_raw()
    for site in raw["sites"]:
        site["systems"][0]["blocks_per_string"] = BLOCKS
    fleet = parse_fleet(raw, source="drift test fleet")
    heat_from_s = dt.datetime.combine(START + dt.timedelta(days=HEAT_FROM_DAY), dt.time(),
                                      dt.UTC).timestamp()
    outdoor = SiteEnvironment.outdoor
    if heat_wave:
        def hotter(self, t):
            temp, rh = outdoor(self, t)
            return temp + np.where(np.asarray(t) >= heat_from_s, 10.0, 0.0), rh
        monkeypatch.setattr(SiteEnvironment, "outdoor", hotter)
    frames = []
    for site in fleet.sites:
        history = generate.simulate_site(fleet, site.code, generate.Window(START, DAYS), 7)
        features = snapshot_features(history.telemetry(), history.batteries,
                                     history.maintenance_events, every_days=1)
        frames.append(training_set(features, history.battery_truth, history.batteries))
    monkeypatch.setattr(SiteEnvironment, "outdoor", outdoor)
    period = pl.col("ts") >= dt.datetime.combine(
        START + dt.timedelta(days=PERIOD_FROM_DAY), dt.time(), dt.UTC)
    return pl.concat(frames).filter(period).with_columns(  # an oracle scorer: P50 = truth
        rul_p50_days=pl.col("true_rul_days"), is_reference=pl.col("ts").dt.day() % 3 != 0)


@pytest.fixture(scope="module")
def fleets() -> dict[str, pl.DataFrame]:
    with pytest.MonkeyPatch.context() as mp:
        return {"normal": _simulate(False, mp), "heat": _simulate(True, mp)}


def _split(fleets, current: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    reference = fleets["normal"].filter("is_reference").drop("rul_p50_days")  # training rows
    return reference, fleets[current].filter(~pl.col("is_reference")).drop("true_rul_days")


def test_normal_operation_does_not_drift(fleets, tmp_path):
    reference, current = _split(fleets, "normal")
    result = drift.drift_report(reference, current, tmp_path / "normal.html")

    assert result.path.exists() and result.path.stat().st_size > 10_000
    assert result.share < DEFAULT_SHARE_THRESHOLD, result.drifted
    assert len(result.columns) >= 40 and not set(result.columns) & drift.CLOCK_FEATURES
    assert result.prediction is not None and not result.prediction.drifted
    print(f"normal: {len(result.drifted)}/{len(result.columns)} = {result.share:.3f} "
          f"{result.drifted}")


def test_heat_wave_drifts_the_temperature_features(fleets, tmp_path):
    reference, current = _split(fleets, "heat")
    result = drift.drift_report(reference, current, tmp_path / "heat.html")

    assert result.share > DEFAULT_SHARE_THRESHOLD
    short_windows = {f"{stat}{w}" for stat in ("temp_mean_", "arrhenius_hours_")
                     for w in ("1d", "7d", "30d")} | {"site_temp_30d"}
    assert short_windows <= set(result.drifted)
    temperature = [c for c in result.drifted if c.startswith(TEMPERATURE)]
    assert len(temperature) > len(result.drifted) / 2  # it is the heat that drifted
    mean_shift = current["temp_mean_7d"].mean() - reference["temp_mean_7d"].mean()
    assert 0.3 < mean_shift < 3.0  # the room, not the outdoors: the HVAC absorbs most of it
    print(f"heat: {len(result.drifted)}/{len(result.columns)} = {result.share:.3f}, "
          f"temp_mean_7d +{mean_shift:.2f} degC, score "
          f"{result.columns['temp_mean_7d'].score:.2f}")


def test_sampling_is_repeatable(fleets, tmp_path):
    reference, current = _split(fleets, "heat")
    few = ["temp_mean_7d", "r_now", "battery_model"]
    a = drift.drift_report(reference, current, tmp_path / "a.html", features=few, max_rows=400)
    b = drift.drift_report(reference, current, tmp_path / "b.html", features=few, max_rows=400)
    assert (a.reference_rows, a.current_rows) == (400, 400) and a.scores() == b.scores()
    assert a.columns["battery_model"].method == "jensenshannon"
    assert a.columns["temp_mean_7d"].method == "wasserstein"


def test_daily_asset_links_the_report_and_warns_on_drift(fleets, tmp_path):
    storage = LakeStorage(base_dir=str(tmp_path))
    mlflow = MlflowStore(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", ui_url="http://x")
    reference, current = _split(fleets, "heat")
    storage.write_derived("features/training_set", reference)
    for hour, part in enumerate(current.partition_by("site_id")):  # two "hourly" files
        path = storage.lake_dir / "features" / "scored" / "date=2024-05-30" / f"{hour:02d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        part.write_parquet(path)
    (storage.lake_dir / "features" / "scored" / "date=2024-05-29").mkdir()  # empty: not latest

    from assets.monitoring.drift import drift_report

    result = dg.materialize([drift_report, *MONITORING_CHECKS],
                            resources={"storage": storage, "mlflow": mlflow})
    assert result.success
    [meta] = [m.materialization.metadata for m in result.get_asset_materialization_events()]
    html = tmp_path / "reports" / "drift" / "2024-05-30.html"
    assert meta["report"].value == str(html) and html.exists()
    assert meta["drifted_share"].value > DEFAULT_SHARE_THRESHOLD
    assert meta["reference"].value.startswith("whole training set")
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    [schedule] = MONITORING_SCHEDULES
    assert schedule.cron_schedule == "30 0 * * *"
