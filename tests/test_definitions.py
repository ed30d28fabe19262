"""The Dagster code location: loads from the environment, has the expected assets and checks,
and the repo's dagster.yaml keeps instance storage under data/dagster."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import dagster as dg
import pytest

from core.settings import REPO_ROOT, Settings, SettingsError
from pipelines import definitions

SITE_TABLES = [
    "environment",
    "telemetry",
    "batteries",
    "discharge_events",
    "discharge_curves",
    "maintenance_events",
    "battery_truth",
]
EXPECTED_KEYS = {
    *(f"lake/{t}" for t in ["sites", "systems", "strings", *SITE_TABLES]),
    "warehouse",
    "features/snapshots",
    "features/training_set",
    "models/battery_rul",
    *(f"lake/{t}_live" for t in ["telemetry", "environment", "discharge_events"]),
    "lake/rul_predictions",
    "lake/alerts",
    "reports/drift",
    "reports/fleet_health",
}


def test_code_location_loads_from_environment(monkeypatch, tmp_path, fleet_toml):
    monkeypatch.setenv("RUL_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("RUL_FLEET_CONFIG", str(fleet_toml))
    defs = definitions.defs()
    graph = defs.resolve_asset_graph()

    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == EXPECTED_KEYS
    partitions = defs.resolve_job_def("materialize_all").partitions_def
    assert partitions.get_partition_keys() == ["DC-CNX-01", "DC-KKN-01"]
    assert defs.resources["storage"].base_dir == str(tmp_path / "elsewhere")


def test_environment_is_read_when_loading_not_when_importing(monkeypatch):
    monkeypatch.setenv("RUL_SEED", "not-a-number")
    importlib.reload(definitions)
    with pytest.raises(SettingsError, match="RUL_SEED"):
        definitions.defs()


def test_sensor_tables_and_the_model_have_blocking_checks(settings):
    defs = definitions.build_definitions(settings)
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    checks = {key.to_user_string(): graph.get_check_spec(key) for key in graph.asset_check_keys}

    blocking = {key for key, spec in checks.items() if spec.blocking}
    assert blocking == {
        "lake/telemetry:expectations",
        "lake/environment:expectations",
        "models/battery_rul:promotion",
    }
    # live batches and drift warn: a quarantined batch or a drifted day must not stop the rest
    assert set(checks) - blocking == {
        *(f"lake/{t}_live:batch_expectations"
          for t in ["telemetry", "environment", "discharge_events"]),
        "reports/drift:drifted_share",
    }


def test_assets_are_grouped_and_duckdb_writes_are_pooled(settings):
    defs = definitions.build_definitions(settings)
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}

    assert {spec.group_name for spec in specs.values()} == {
        "data", "training", "live", "scoring", "monitoring"}
    assert all(spec.description for spec in specs.values())
    assert defs.resolve_assets_def("warehouse").op.pool == "duckdb_writer"


def test_settings_defaults_are_rooted_in_the_data_dir():
    settings = Settings.from_env({})
    assert settings.data_dir == REPO_ROOT / "data" and settings.fleet_config is None
    assert (settings.seed, settings.days, settings.step_s) == (42, 730, 3600)
    assert settings.mlflow_uri == f"sqlite:///{REPO_ROOT}/data/mlflow/mlflow.db"
    assert settings.mlflow_artifacts == (REPO_ROOT / "data" / "mlflow" / "artifacts").as_uri()


def test_a_tracking_server_keeps_its_own_artifact_root():
    settings = Settings.from_env({"RUL_MLFLOW_URI": "http://mlflow.internal:5000"})
    assert settings.mlflow_uri == "http://mlflow.internal:5000"
    assert settings.mlflow_artifacts is None


def test_dagster_yaml_puts_instance_storage_under_data_dagster(tmp_path, monkeypatch):
    shutil.copy(REPO_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.chdir(tmp_path)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        instance.get_runs()
    created = {p.name for p in tmp_path.iterdir()}
    assert created == {"dagster.yaml", "data"}
    assert Path("data/dagster/storage/history/runs.db").exists()


def test_live_operations_run_by_themselves_under_the_daemon(settings):
    defs = definitions.build_definitions(settings)
    sensors = {s.name: s.default_status for s in defs.sensors}
    assert set(sensors) == {"landing_sensor", "rul_scoring_sim_hours", "rul_scoring_champion"}
    assert set(sensors.values()) == {dg.DefaultSensorStatus.RUNNING}
    schedules = {s.name: s for s in defs.schedules}
    assert schedules["daily_drift_report"].default_status == dg.DefaultScheduleStatus.RUNNING
    graph = defs.resolve_asset_graph()
    fresh = {k.to_user_string() for k in graph.get_all_asset_keys()
             if graph.get(k).freshness_policy is not None}
    assert fresh == {"lake/telemetry_live", "lake/environment_live", "lake/alerts",
                     "lake/rul_predictions", "reports/drift"}
    assert {"ingest_landing", "rul_scoring", "simulator_control"} <= {
        j.name for j in defs.resolve_all_job_defs()}
