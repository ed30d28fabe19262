"""The data assets for one site partition, with all storage in tmp_path: files, checks and
warehouse views; a site whose telemetry fails its blocking check is quarantined and nothing
downstream of it is materialized."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time

import dagster as dg
import duckdb
import polars as pl
import pytest

from assets.resources.storage import LakeStorage
from assets.validation import checks
from core import lake
from core.warehouse import refresh_views
from pipelines.definitions import build_definitions
from simulator import generate

SITE = "DC-CNX-01"
TELEMETRY = dg.AssetKey(["lake", "telemetry"])
TRUTH = dg.AssetKey(["lake", "battery_truth"])


def materialize(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        list(defs.assets),
        selection=dg.AssetSelection.groups("data"),  # training needs every site: own tests
        resources=defs.resources,
        partition_key=SITE,
        instance=instance,
        raise_on_error=False,
    )


@pytest.fixture
def storage(settings) -> LakeStorage:
    """The storage resource the definitions build from `settings` (paths under tmp_path)."""
    return LakeStorage(base_dir=str(settings.data_dir))


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def test_one_partition_writes_lake_checks_and_views(settings, storage, instance):
    result = materialize(build_definitions(settings), instance)
    assert result.success

    checks = result.get_asset_check_evaluations()
    assert {(c.asset_key.path[-1], c.passed, c.partition) for c in checks} == {
        ("telemetry", True, SITE),
        ("environment", True, SITE),
    }
    lake = storage.lake_dir
    for table in ["sites", "systems", "strings"]:
        assert (lake / f"{table}.parquet").exists()
    telemetry = pl.read_parquet(lake / "telemetry" / f"{SITE}.parquet")
    assert telemetry.height > 0 and telemetry["site_id"].unique().to_list() == [SITE]
    assert not (lake / "telemetry" / "DC-KKN-01.parquet").exists()
    assert not any((lake / "_staging").iterdir())

    materialized = {
        m.asset_key.to_user_string(): m.materialization.metadata
        for m in result.get_asset_materialization_events()
    }
    assert materialized["lake/telemetry"]["dagster/row_count"].value == telemetry.height
    assert "preview" in materialized["lake/battery_truth"]

    with duckdb.connect(str(storage.warehouse_path), read_only=True) as con:
        rows, units = con.execute(
            "SELECT count(*), count(DISTINCT t.battery_id) FROM telemetry t "
            "JOIN strings s USING (string_id)"
        ).fetchone()
    assert (rows, units) == (telemetry.height, telemetry["battery_id"].n_unique())


def test_failed_blocking_check_quarantines_site_and_blocks_downstream(
    settings, storage, instance, corrupt_site
):
    defs = build_definitions(settings)
    assert materialize(defs, instance).success
    good = pl.read_parquet(storage.lake_dir / "telemetry" / f"{SITE}.parquet")

    corrupt_site(SITE)
    result = materialize(defs, instance)

    assert not result.success
    failed = [c for c in result.get_asset_check_evaluations() if not c.passed]
    assert [(c.asset_key, c.partition) for c in failed] == [(TELEMETRY, SITE)]
    materialized = {m.asset_key for m in result.get_asset_materialization_events()}
    assert TELEMETRY not in materialized and TRUTH not in materialized
    assert dg.AssetKey("warehouse") not in materialized
    # the lake still holds the last good version; the rejected one waits in quarantine
    assert pl.read_parquet(storage.lake_dir / "telemetry" / f"{SITE}.parquet").equals(good)
    rejected = pl.read_parquet(storage.lake_dir / "_quarantine" / SITE / "telemetry.parquet")
    assert (rejected["voltage_v"] == -1.0).all()


def test_warehouse_refresh_waits_for_a_reader_to_let_go(settings, storage, instance):
    assert materialize(build_definitions(settings), instance).success
    hold = (
        "import duckdb, time\n"
        f"con = duckdb.connect({str(storage.warehouse_path)!r}, read_only=True)\n"
        "print('holding', flush=True)\n"
        "time.sleep(1.5)\n"
    )
    reader = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "holding"
        began = time.perf_counter()
        counts = refresh_views(storage.lake_dir, storage.warehouse_path, timeout_s=30)
        waited = time.perf_counter() - began
    finally:
        reader.wait(timeout=30)
    assert waited > 0.5  # the reader's lock really blocked the writer, which retried
    assert counts["battery_truth"] > 0 and "discharge_curves" in counts


def test_long_telemetry_is_validated_in_row_group_batches(small_fleet, tmp_path, monkeypatch):
    monkeypatch.setattr(generate, "TELEMETRY_CHUNK_ROWS", 100)  # one day per chunk ...
    monkeypatch.setattr(lake, "MIN_ROW_GROUP", 1)  # ... and per row group
    monkeypatch.setattr(checks, "MAX_BATCH_ROWS", 200)
    history = generate.simulate_site(small_fleet, SITE, generate.Window(dt.date(2024, 1, 1), 7), 7)
    written = lake.write_chunks(history.telemetry_chunks(), tmp_path / "t.parquet", "telemetry")
    units = history.batteries.height

    result = checks._validate_telemetry(written.path, 3600, units)
    assert result.passed, result.failures
    assert result.metadata["batches"] >= 3 and result.rows == written.rows

    wrong = checks._validate_telemetry(written.path, 3600, units + 1)
    assert wrong.failures == [f"battery_id: {units} distinct values, expected {units + 1}"]
