"""Live ingest: landing files are validated, published by simulated day, recorded in the
manifest and never published twice; bad batches are quarantined with a reason; the sensor
requests each file once; the Dagster asset materializes on tmp storage with its views."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest

from assets.live import LIVE_ASSETS, LIVE_JOBS, LIVE_SENSORS
from assets.live.sensors import run_key
from assets.resources.storage import LakeStorage
from core import ingest
from core.layout import Layout
from core.warehouse import refresh_views
from simulator import schema
from simulator.live_validation import batch_start, validate_batch

T0 = dt.datetime(2026, 1, 1, 0, 5, tzinfo=dt.UTC)
TELEMETRY = dg.AssetKey(["lake", "telemetry_live"])


def name_of(start: dt.datetime, seq: int) -> str:
    return f"{start:%Y%m%dT%H%M%SZ}-{seq:06d}"


def telemetry(start: dt.datetime = T0, batteries: int = 6, ticks: int = 12,
              step: dt.timedelta = dt.timedelta(minutes=1)) -> pl.DataFrame:
    """A batch as the simulator lands it: every battery at every tick, two sites."""
    n = batteries * ticks
    rng = np.random.default_rng(batteries * ticks)
    ids = [f"DC-T{i % 2}-UPS-01-S1-J{i:04d}" for i in range(batteries)]
    return schema.conform(pl.DataFrame({
        "ts": [start + k * step for k in range(ticks) for _ in range(batteries)],
        "battery_id": ids * ticks,
        "string_id": [b.rsplit("-", 1)[0] for b in ids] * ticks,
        "site_id": [b[:5] for b in ids] * ticks,
        "voltage_v": rng.normal(13.5, 0.05, n), "current_a": rng.normal(0.3, 0.02, n),
        "temperature_c": rng.normal(26, 1, n), "resistance_mohm": rng.normal(4, 0.1, n),
        "conductance_s": rng.normal(900, 10, n), "soc_pct": np.full(n, 100.0),
        "mode": ["float"] * n,
    }), "telemetry")


def environment(start: dt.datetime = T0, ticks: int = 12) -> pl.DataFrame:
    rows = [(site, start + dt.timedelta(minutes=k)) for k in range(ticks) for site in ("DC-T0",
                                                                                       "DC-T1")]
    return schema.conform(pl.DataFrame({
        "site_id": [r[0] for r in rows], "ts": [r[1] for r in rows],
        "outdoor_temp_c": 31.0, "room_temp_c": 24.5, "humidity_pct": 70.0,
        "hvac_state": "normal", "grid_up": True}), "environment")


def discharge_events(start: dt.datetime) -> pl.DataFrame:
    """One discharge that began 40 minutes before the batch and ended inside it."""
    return schema.conform(pl.DataFrame({
        "event_id": ["DC-T0-UPS-01-S1-L00001"], "site_id": ["DC-T0"],
        "system_id": ["DC-T0-UPS-01"], "string_id": ["DC-T0-UPS-01-S1"],
        "start_ts": [start - dt.timedelta(minutes=40)], "end_ts": [start + dt.timedelta(minutes=3)],
        "outage_minutes": [43.0], "generator_started": [False], "depth_of_discharge": [0.4],
        "ah_drawn": [60.0], "runtime_minutes": [43.0], "load_lost": [False],
        "min_block_voltage_v": [11.9], "min_block_battery_id": ["DC-T0-UPS-01-S1-J0000"]}),
        "discharge_events")


def land(data_dir: Path, table: str, name: str, df: pl.DataFrame) -> Path:
    """Write like the simulator: a dot-named temp file renamed into place."""
    path = Layout(data_dir).landing_dir / table / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{name}.tmp")
    df.write_parquet(tmp)
    os.replace(tmp, path)
    return path


def published(data_dir: Path, table: str = "telemetry") -> pl.DataFrame:
    files = sorted((Layout(data_dir).lake_dir / f"{table}_live").glob("*/*.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame()


def test_ingest_twice_adds_nothing_and_the_manifest_remembers(tmp_path):
    name = name_of(T0, 1)
    batch = telemetry()
    land(tmp_path, "telemetry", name, batch)
    land(tmp_path, "environment", name, environment())
    (Layout(tmp_path).landing_dir / "telemetry" / ".in-flight.parquet").write_bytes(b"partial")

    assert [f.key for f in ingest.pending_files(tmp_path)] == [
        f"environment/{name}.parquet", f"telemetry/{name}.parquet"]
    first = ingest.ingest_files(tmp_path)
    assert [(o.file.table, o.status, o.rows) for o in first] == [
        ("environment", "published", 24), ("telemetry", "published", batch.height)]
    assert published(tmp_path).sort("battery_id", "ts").equals(batch.sort("battery_id", "ts"))
    assert (Layout(tmp_path).landing_dir / "_ingested" / "telemetry" / f"{name}.parquet").exists()
    manifest = ingest.read_manifest(Layout(tmp_path).lake_dir, "telemetry")
    assert manifest.select("name", "status", "rows").rows() == [(name, "published", 72)]

    # the simulator restarts and lands the same batch again: known, retired, nothing added
    again = land(tmp_path, "telemetry", name, batch)
    assert ingest.pending_files(tmp_path) == []
    second = ingest.ingest_files(tmp_path)
    assert [(o.status, o.rows) for o in second] == [("duplicate", 0)] and not again.exists()
    assert published(tmp_path).height == batch.height

    # even with the manifest lost (crash between publish and manifest) no row is repeated
    ingest.manifest_path(Layout(tmp_path).lake_dir, "telemetry").unlink()
    land(tmp_path, "telemetry", name, batch)
    third = ingest.ingest_files(tmp_path)
    assert [(o.status, o.rows, o.dropped) for o in third] == [("duplicate", 0, batch.height)]
    assert published(tmp_path).height == batch.height
    assert ingest.read_manifest(Layout(tmp_path).lake_dir, "telemetry")["name"].to_list() == [name]


def test_a_batch_across_midnight_is_split_by_day_under_its_own_name(tmp_path):
    start = dt.datetime(2026, 1, 1, 23, 55, tzinfo=dt.UTC)
    name = name_of(start, 7)
    batch = telemetry(start, ticks=12)  # 23:55 .. 00:06
    land(tmp_path, "telemetry", name, batch)
    [outcome] = ingest.ingest_files(tmp_path)

    live = Layout(tmp_path).lake_dir / "telemetry_live"
    assert sorted(p.relative_to(live).as_posix() for p in outcome.published) == [
        f"date=2026-01-01/{name}.parquet", f"date=2026-01-02/{name}.parquet"]
    first = pl.read_parquet(live / "date=2026-01-01" / f"{name}.parquet")
    second = pl.read_parquet(live / "date=2026-01-02" / f"{name}.parquet")
    assert (first.height, second.height) == (5 * 6, 7 * 6)
    assert first["ts"].max() < dt.datetime(2026, 1, 2, tzinfo=dt.UTC) <= second["ts"].min()
    assert outcome.newest_ts == batch["ts"].max()

    counts = refresh_views(Layout(tmp_path).lake_dir, Layout(tmp_path).warehouse_path)
    assert counts["telemetry_live"] == batch.height
    with duckdb.connect(str(Layout(tmp_path).warehouse_path), read_only=True) as con:
        by_day = con.execute("SELECT date, count(*) FROM telemetry_live GROUP BY date "
                             "ORDER BY date").fetchall()
        assert by_day == [(dt.date(2026, 1, 1), 30), (dt.date(2026, 1, 2), 42)]
        assert con.execute("SELECT count(*) FROM telemetry_all").fetchone()[0] == batch.height


@pytest.mark.parametrize(("corrupt", "column", "problem", "count"), [
    (lambda df: df.with_columns(voltage_v=pl.when(pl.int_range(pl.len()) == 3).then(500.0)
                                .otherwise("voltage_v")), "voltage_v", "above 16 V", 1),
    (lambda df: df.drop("soc_pct"), "soc_pct", "column missing", 1),
    (lambda df: pl.concat([df, df.head(4)]), "battery_id, ts", "duplicate", 4),
    (lambda df: df.with_columns(mode=pl.lit("charging")), "mode", "not in", 72),
    (lambda df: df.with_columns(ts=pl.col("ts") - dt.timedelta(hours=3)), "ts",
     "before the batch's first simulated time", 72),
])
def test_a_bad_batch_is_quarantined_with_its_reason(tmp_path, corrupt, column, problem, count):
    good, bad = name_of(T0, 1), name_of(T0 + dt.timedelta(minutes=12), 2)
    land(tmp_path, "telemetry", good, telemetry())
    land(tmp_path, "telemetry", bad, corrupt(telemetry(T0 + dt.timedelta(minutes=12))))
    outcomes = {o.file.name: o for o in ingest.ingest_files(tmp_path)}

    assert outcomes[good].status == "published" and outcomes[bad].status == "quarantined"
    folder = Layout(tmp_path).landing_dir / "_quarantine" / "telemetry"
    assert (folder / f"{bad}.parquet").exists()  # kept, byte for byte what was landed
    reason = json.loads((folder / f"{bad}.reason.json").read_text())
    assert reason["file"].endswith(f"telemetry/{bad}.parquet")
    assert [(p["column"], p["count"]) for p in reason["problems"] if problem in p["problem"]] \
        == [(column, count)]
    # never published, never recorded: only the good batch is in the lake and the manifest
    assert published(tmp_path)["ts"].min() == T0 and published(tmp_path).height == 72
    lake = Layout(tmp_path).lake_dir
    assert ingest.read_manifest(lake, "telemetry")["name"].to_list() == [good]


def test_an_unreadable_file_is_quarantined_and_an_event_goes_to_its_start_day(tmp_path):
    start = dt.datetime(2026, 1, 2, 0, 10, tzinfo=dt.UTC)
    broken, name = name_of(T0, 1), name_of(start, 2)
    (Layout(tmp_path).landing_dir / "telemetry").mkdir(parents=True)
    (Layout(tmp_path).landing_dir / "telemetry" / f"{broken}.parquet").write_bytes(b"not parquet")
    land(tmp_path, "discharge_events", name, discharge_events(start))
    outcomes = {o.file.key: o for o in ingest.ingest_files(tmp_path)}

    bad = outcomes[f"telemetry/{broken}.parquet"]
    assert bad.status == "quarantined" and "unreadable Parquet" in bad.reason["problems"][0][
        "problem"]
    event = outcomes[f"discharge_events/{name}.parquet"]
    assert event.status == "published" and [p.parent.name for p in event.published] == [
        "date=2026-01-01"]  # started 23:30 the day before: it belongs to that day


def test_validation_of_a_fleet_sized_batch_is_fast():
    batch = telemetry(batteries=1944, ticks=12)
    start = batch_start(name_of(T0, 1))
    assert validate_batch(batch, "telemetry", start=start).passed  # first call imports GX
    began = time.perf_counter()
    result = validate_batch(batch, "telemetry", start=start)
    seconds = time.perf_counter() - began
    assert result.passed and result.rows == 23_328
    assert seconds < 3.0, f"{seconds:.2f} s per 23,328-row batch"


def test_sensor_requests_each_file_once(tmp_path):
    storage = LakeStorage(base_dir=str(tmp_path))
    [sensor] = LIVE_SENSORS
    instance = dg.DagsterInstance.ephemeral()
    first, second = name_of(T0, 1), name_of(T0 + dt.timedelta(minutes=12), 2)
    land(tmp_path, "telemetry", first, telemetry())
    land(tmp_path, "environment", first, environment())

    tick = sensor(dg.build_sensor_context(instance=instance, resources={"storage": storage}))
    [request] = tick.run_requests
    files = [f"environment/{first}.parquet", f"telemetry/{first}.parquet"]
    assert request.run_config == {"ops": {"live_ingest": {"config": {"files": files}}}}
    assert request.run_key == run_key(list(reversed(files))) != run_key(files[:1])

    # the run has not happened yet: the next tick must not request the same files again
    ctx = dg.build_sensor_context(instance=instance, cursor=tick.cursor,
                                  resources={"storage": storage})
    assert isinstance(sensor(ctx), dg.SkipReason)
    land(tmp_path, "telemetry", second, telemetry(T0 + dt.timedelta(minutes=12)))
    later = sensor(dg.build_sensor_context(instance=instance, cursor=tick.cursor,
                                           resources={"storage": storage}))
    assert [r.run_config["ops"]["live_ingest"]["config"]["files"] for r in later.run_requests] \
        == [[f"telemetry/{second}.parquet"]]


def test_materialize_ingests_reports_and_creates_views(tmp_path):
    storage = LakeStorage(base_dir=str(tmp_path))
    good, bad = name_of(T0, 1), name_of(T0 + dt.timedelta(minutes=12), 2)
    land(tmp_path, "telemetry", good, telemetry())
    land(tmp_path, "environment", good, environment())
    land(tmp_path, "telemetry", bad, telemetry(T0 + dt.timedelta(minutes=12)).with_columns(
        temperature_c=pl.lit(-40.0, pl.Float32)))
    from assets.monitoring.alerts import ALERTS_KEY, alerts
    from assets.resources.notifications import Notifications

    defs = dg.Definitions(assets=[*LIVE_ASSETS, alerts], jobs=LIVE_JOBS, sensors=LIVE_SENSORS,
                          resources={"storage": storage, "notifications": Notifications()})
    files = [f"telemetry/{good}.parquet", f"environment/{good}.parquet",
             f"telemetry/{bad}.parquet"]

    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("ingest_landing").execute_in_process(
            run_config={"ops": {"live_ingest": {"config": {"files": files}}}}, instance=instance)
        assert result.success
        meta = {m.asset_key: m.materialization.metadata
                for m in result.get_asset_materialization_events()}
        # the alert engine runs on what the ingest published, in the same run
        assert set(meta) == {TELEMETRY, dg.AssetKey(["lake", "environment_live"]), ALERTS_KEY}
        assert meta[ALERTS_KEY]["telemetry_rows"].value == 72
        tel = meta[TELEMETRY]
        assert tel["dagster/row_count"].value == 72 and tel["files_quarantined"].value == 1
        assert "temperature_c" in tel["quarantined"].value and bad in tel["quarantined"].value
        assert tel["newest_simulated_ts"].value == (T0 + dt.timedelta(minutes=11)).timestamp()
        checks = {c.asset_key: c.passed for c in result.get_asset_check_evaluations()}
        assert checks == {TELEMETRY: False, dg.AssetKey(["lake", "environment_live"]): True}

        with duckdb.connect(str(storage.warehouse_path), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM telemetry_live").fetchone()[0] == 72
            assert con.execute("SELECT count(*) FROM environment_live").fetchone()[0] == 24

        # dg.materialize on the same storage: everything pending was handled, nothing new
        again = dg.materialize(LIVE_ASSETS, resources={"storage": storage}, instance=instance)
        assert again.success and again.get_asset_materialization_events() == []


def test_views_over_derived_tables_appear_with_their_files(tmp_path):
    lake = Layout(tmp_path).lake_dir
    db = Layout(tmp_path).warehouse_path
    assert "rul_predictions" not in refresh_views(lake, db)
    (lake / "rul_predictions" / "date=2026-01-01").mkdir(parents=True)
    pl.DataFrame({"battery_id": ["a", "b"], "rul_p50_days": [400.0, 90.0]}).write_parquet(
        lake / "rul_predictions" / "date=2026-01-01" / "00.parquet")
    pl.DataFrame({"alert_id": [1]}).write_parquet(lake / "alerts.parquet")
    counts = refresh_views(lake, db)
    assert counts["rul_predictions"] == 2 and counts["alerts"] == 1
    assert "alert_events" not in counts
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT date, count(*) FROM rul_predictions GROUP BY date"
                           ).fetchall() == [(dt.date(2026, 1, 1), 2)]
