"""The `rul` command: generate writes the lake layout without Dagster, expected mistakes end
in one `rul: error:` line with exit status 2, and `rul pipeline` runs the whole pipeline
against a real (temporary) Dagster instance."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from core.settings import REPO_ROOT
from pipelines.cli import main

RUL = str(Path(sys.executable).with_name("rul"))
SITES = ["DC-CNX-01", "DC-KKN-01"]


def rul(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **(env or {})}
    return subprocess.run([RUL, *args], check=False, capture_output=True, text=True, env=environ)


def generate(fleet_toml: Path, out: Path, *extra: str) -> int:
    args = ["generate", "--fleet", str(fleet_toml), "--start", "2024-03-01", "--days", "5"]
    return main([*args, "--step", "1h", "--seed", "3", "--out", str(out), *extra])


def test_generate_writes_the_lake_layout(fleet_toml, tmp_path, capsys):
    assert generate(fleet_toml, tmp_path / "lake") == 0

    out = capsys.readouterr().out
    assert "telemetry" in out and "2 sites, 5 days at 3600 s steps, seed 3" in out
    for table in ["sites", "systems", "strings"]:
        assert (tmp_path / "lake" / f"{table}.parquet").exists()
    telemetry = pl.read_parquet(tmp_path / "lake" / "telemetry" / "*.parquet")
    assert sorted(telemetry["site_id"].unique()) == SITES
    assert telemetry["ts"].min().isoformat().startswith("2024-03-01T00:00")


def test_generate_is_reproducible_for_a_seed(fleet_toml, tmp_path):
    assert generate(fleet_toml, tmp_path / "a") == 0
    assert generate(fleet_toml, tmp_path / "b") == 0
    for table in ["telemetry", "battery_truth"]:
        a, b = (pl.read_parquet(tmp_path / d / table / "*.parquet") for d in "ab")
        assert a.equals(b)


def test_scale_repeats_the_fleet(fleet_toml, tmp_path):
    assert generate(fleet_toml, tmp_path / "lake", "--scale", "2") == 0
    assert len(list((tmp_path / "lake" / "environment").glob("*.parquet"))) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2024-02-30"], "--start: expected a date"),
        (["--step", "7m"], "--step: expected a step that divides one day"),
        (["--days", "-3"], "--days: must be at least 1"),
        (["--fleet", "missing.toml"], "missing.toml: file not found"),
        (["--fleet", "{broken}"], "not valid TOML"),
        (["--out", "{file}/below"], "--out: cannot write to"),
        (["--start", "2000-01-01"], "no battery is in service during the window"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_expected_mistakes_are_one_line_errors(args, message, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("sites = [", encoding="utf-8")
    (tmp_path / "file").write_text("", encoding="utf-8")
    args = [a.format(broken=broken, file=tmp_path / "file") for a in args]
    out = ["--out", str(tmp_path / "lake")] if "--out" not in args else []

    done = rul("generate", "--days", "1", *out, *args)

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("rul: error: ") and done.stderr.count("\n") == 1
    assert message in done.stderr


def test_invalid_fleet_config_names_the_field(fleet_toml, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(fleet_toml.read_text().replace("blocks_per_string = 4", "blocks_per_string = 0"))
    done = rul("sites", "list", "--fleet", str(bad))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "blocks_per_string" in done.stderr


def test_sites_list_json(fleet_toml):
    done = rul("sites", "list", "--json", "--fleet", str(fleet_toml))
    assert done.returncode == 0
    assert [s["site_id"] for s in json.loads(done.stdout)] == SITES


def dagster_home(tmp_path: Path, fleet_toml: Path) -> dict[str, str]:
    """Environment for `rul pipeline` with the repo's dagster.yaml in a temporary home."""
    shutil.copy(REPO_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    return {
        "DAGSTER_HOME": str(tmp_path),
        "RUL_DATA_DIR": str(tmp_path / "data"),
        "RUL_FLEET_CONFIG": str(fleet_toml),
        "RUL_DAYS": "3",
        "GX_ANALYTICS_ENABLED": "false",
    }


@pytest.mark.slow
def test_pipeline_materializes_the_data_and_names_what_it_cannot_train(fleet_toml, tmp_path):
    done = rul("pipeline", env=dagster_home(tmp_path, fleet_toml))

    # three days are too short for any training snapshot: the data runs succeed, training
    # fails with a message that says why (tests/test_training_assets.py trains for real)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 of 5 runs failed (training)" in done.stdout
    assert "step features__training_set: the training set is empty" in done.stdout
    assert (tmp_path / "data" / "dagster" / "storage" / "history" / "runs.db").exists()
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        sites = con.execute("SELECT DISTINCT site_id FROM battery_truth ORDER BY 1").fetchall()
    assert [s for (s,) in sites] == SITES


def test_pipeline_fails_on_a_failed_check_and_names_it(
    fleet_toml, tmp_path, monkeypatch, capsys, corrupt_site
):
    for name, value in dagster_home(tmp_path, fleet_toml).items():
        monkeypatch.setenv(name, value)
    corrupt_site("DC-KKN-01")

    assert main(["pipeline"]) == 1

    out = capsys.readouterr().out
    assert "DC-KKN-01    FAILED" in out and "2 of 5 runs failed (DC-KKN-01, training)" in out
    assert "lake/telemetry:expectations: voltage_v:" in out
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        sites = con.execute("SELECT DISTINCT site_id FROM telemetry").fetchall()
    assert sites == [("DC-CNX-01",)]  # the warehouse never sees the rejected site
