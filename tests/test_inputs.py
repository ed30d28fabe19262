"""`rul predict` input checks: every bad file ends in one `rul: error: <file>: <column>: ...`
line with exit status 2, no traceback and no output file. These cases fail before the model is
loaded, so no model is needed here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import tomlkit
from conftest import small_fleet_raw

from models.inputs import InputError, parse_as_of
from pipelines.cli import main

RUL = str(Path(sys.executable).with_name("rul"))


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inputs")
    fleet = root / "fleet.toml"
    fleet.write_text(tomlkit.dumps(small_fleet_raw()), encoding="utf-8")
    args = ["--start", "2024-01-01", "--days", "20", "--step", "1h", "--seed", "4"]
    assert main(["generate", "--fleet", str(fleet), *args, "--out", str(root / "lake")]) == 0
    return root / "lake"


@pytest.fixture
def files(lake, tmp_path) -> dict[str, pl.DataFrame]:
    return {t: pl.read_parquet(lake / t / "*.parquet")
            for t in ("telemetry", "batteries", "maintenance_events")}


def predict(tmp_path: Path, telemetry, batteries, *extra: str) -> list[str]:
    """Write the inputs (DataFrames, or text for raw files) and return the CLI arguments."""
    paths = []
    for name, content in (("telemetry", telemetry), ("batteries", batteries)):
        path = content if isinstance(content, Path) else tmp_path / f"{name}.csv"
        if isinstance(content, pl.DataFrame):
            content.write_csv(path)
        paths.append(path)
    return ["predict", "--telemetry", str(paths[0]), "--batteries", str(paths[1]),
            "--out", str(tmp_path / "out.csv"), *extra]


def assert_one_line_error(code: int, err: str, out_file: Path, *needles: str) -> None:
    assert code == 2
    assert err.startswith("rul: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    assert not out_file.exists()
    assert not list(out_file.parent.glob(".out.csv*"))  # no temporary left behind either


def raw(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


CASES = {
    "missing column": (lambda t, b, p: (t.drop("voltage_v"), b),
                       ["telemetry.csv: voltage_v: missing column"]),
    "millivolts": (lambda t, b, p: (t.with_columns(pl.col("voltage_v") * 1000), b),
                   ["telemetry.csv: voltage_v: median", "millivolts"]),
    "kelvin": (lambda t, b, p: (t.with_columns(pl.col("temperature_c") + 273.15), b),
               ["telemetry.csv: temperature_c: median", "kelvin"]),
    "ohms": (lambda t, b, p: (t.with_columns(pl.col("resistance_mohm") / 1000), b),
             ["telemetry.csv: resistance_mohm:", "ohms"]),
    "bad timestamp": (
        lambda t, b, p: (t.with_columns(ts=pl.col("ts").cast(pl.String))
                         .with_columns(ts=pl.when(pl.int_range(pl.len()) == 5)
                                       .then(pl.lit("yesterday")).otherwise("ts")), b),
        ["telemetry.csv: ts: 1 values are not timestamps", "'yesterday'"]),
    "bad number": (lambda t, b, p: (t.with_columns(
        current_a=pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("n/a"))
        .otherwise(pl.col("current_a").cast(pl.String))), b),
        ["telemetry.csv: current_a: 1 values are not numbers", "'n/a'"]),
    "unknown mode": (lambda t, b, p: (t.with_columns(mode=pl.lit("trickle")), b),
                     ["telemetry.csv: mode: unknown value 'trickle'"]),
    "conflicting duplicate": (
        lambda t, b, p: (pl.concat([t, t.head(1).with_columns(pl.col("voltage_v") + 0.5)]), b),
        ["telemetry.csv: ts: 1 readings conflict", "same battery_id and ts"]),
    "unknown battery": (lambda t, b, p: (t, b.filter(pl.col("battery_id") != t["battery_id"][0])),
                        ["telemetry.csv: battery_id: 1 ids are not in", "batteries.csv"]),
    "bad date": (lambda t, b, p: (t, b.with_columns(install_date=pl.lit("soon"))),
                 ["batteries.csv: install_date:", "not dates", "'soon'"]),
    "batteries missing column": (lambda t, b, p: (t, b.drop("rated_capacity_ah")),
                                 ["batteries.csv: rated_capacity_ah: missing column"]),
    "unknown battery model": (lambda t, b, p: (t, b.with_columns(battery_model=pl.lit("X9"))),
                              ["batteries.csv: battery_model: unknown model 'X9'"]),
    "repeated battery": (lambda t, b, p: (t, pl.concat([b, b.head(1)])),
                         ["batteries.csv: battery_id: 1 ids appear more than once"]),
    "empty file": (lambda t, b, p: (raw(p, "telemetry.csv", ""), b),
                   ["telemetry.csv: empty file"]),
    "header only": (lambda t, b, p: (t.head(0), b), ["telemetry.csv: no rows"]),
    "wrong extension": (lambda t, b, p: (raw(p, "telemetry.xlsx", "ts,battery_id\n"), b),
                        ["telemetry.xlsx: expected a .csv or .parquet file"]),
    "not parquet": (lambda t, b, p: (raw(p, "telemetry.parquet", "ts,battery_id\n1,2\n"), b),
                    ["telemetry.parquet: cannot read as Parquet"]),
    "ragged csv": (lambda t, b, p: (raw(p, "telemetry.csv", ",".join(t.columns) + "\n1,2"
                                        + "," * len(t.columns) + "\n"), b),
                   ["telemetry.csv: cannot read as CSV"]),
    "missing file": (lambda t, b, p: (p / "nowhere.csv", b), ["nowhere.csv: file not found"]),
    **{f"empty {c}": (lambda t, b, p, c=c: (t.with_columns(pl.lit(None).alias(c)), b),
                      [f"telemetry.csv: {c}: all", "values are empty"])
       for c in ("voltage_v", "current_a", "temperature_c", "resistance_mohm")},
    "constant temperature": (lambda t, b, p: (t.with_columns(temperature_c=pl.lit(25.0)), b),
                             ["telemetry.csv: temperature_c: every value is 25 over 19 days",
                              "stuck sensor"]),
    "constant voltage": (lambda t, b, p: (t.with_columns(voltage_v=pl.lit(13.5)), b),
                         ["telemetry.csv: voltage_v: every value is 13.5"]),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_error_and_nothing_written(case, files, tmp_path, capsys):
    make, needles = CASES[case]
    telemetry, batteries = make(files["telemetry"], files["batteries"], tmp_path)

    code = main(predict(tmp_path, telemetry, batteries))

    assert_one_line_error(code, capsys.readouterr().err, tmp_path / "out.csv", *needles)


@pytest.mark.parametrize(("args", "needle"), [
    (["--as-of", "next week"], "--as-of: expected a date"),
    (["--out", "{tmp}/result.xlsx"], "--out: expected a .csv or .parquet file"),
    (["--out", "{tmp}/missing/out.csv"], "--out: folder"),
])
def test_bad_arguments_are_one_line_errors(args, needle, files, tmp_path, capsys):
    args = [a.format(tmp=tmp_path) for a in args]
    code = main(predict(tmp_path, files["telemetry"], files["batteries"]) + args)
    assert_one_line_error(code, capsys.readouterr().err, tmp_path / "out.csv", needle)


def test_the_installed_command_prints_no_traceback(files, tmp_path):
    """The same path through the real console script, as a user runs it."""
    args = predict(tmp_path, files["telemetry"].with_columns(pl.col("voltage_v") * 1000),
                   files["batteries"])
    done = subprocess.run([RUL, *args], check=False, capture_output=True, text=True,
                          env={**os.environ})
    assert_one_line_error(done.returncode, done.stderr, tmp_path / "out.csv", "millivolts")


def test_as_of_is_floored_to_a_utc_day():
    assert parse_as_of("2025-06-01T13:30:00+07:00").isoformat() == "2025-06-01T00:00:00+00:00"
    assert parse_as_of("2025-06-01").isoformat() == "2025-06-01T00:00:00+00:00"
    with pytest.raises(InputError, match="--as-of"):
        parse_as_of("June")


def test_no_registered_model_is_one_line_error(files, tmp_path, capsys, monkeypatch):
    store = tmp_path / "mlflow" / "mlflow.db"
    monkeypatch.setenv("RUL_MLFLOW_URI", f"sqlite:///{store}")

    code = main(predict(tmp_path, files["telemetry"], files["batteries"]))

    assert_one_line_error(code, capsys.readouterr().err, tmp_path / "out.csv",
                          "--model: no model registered at models:/battery-rul@champion",
                          str(store), "make pipeline")
    assert not store.exists()  # looking did not create an empty store
