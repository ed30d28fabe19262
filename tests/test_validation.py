"""The GX-backed validation of telemetry and environment partitions: clean frames pass, and
each kind of corruption a real feed produces fails with a line naming the column."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import numpy as np
import polars as pl
import pytest

from simulator import schema
from simulator.validation import validate_environment, validate_telemetry

BATTERIES = 24
STEPS = 200
STEP_S = 3600
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _timestamps() -> pl.Series:
    end = START + dt.timedelta(seconds=STEP_S * (STEPS - 1))
    return pl.datetime_range(START, end, dt.timedelta(seconds=STEP_S), eager=True)


@pytest.fixture(scope="module")
def telemetry() -> pl.DataFrame:
    """Time-major, like the simulator's chunks: every battery at t0, then at t1, ..."""
    rng = np.random.default_rng(1)
    n = BATTERIES * STEPS
    ids = [f"TH01-S1-B{i:02d}" for i in range(BATTERIES)]
    frame = pl.DataFrame(
        {
            "ts": np.repeat(_timestamps().to_numpy(), BATTERIES),
            "battery_id": ids * STEPS,
            "string_id": "TH01-S1",
            "site_id": "TH01",
            "voltage_v": rng.normal(13.5, 0.05, n),
            "current_a": rng.normal(0.3, 0.5, n),
            "temperature_c": rng.normal(25.0, 1.5, n),
            "resistance_mohm": rng.normal(4.0, 0.2, n),
            "conductance_s": rng.normal(260.0, 10.0, n),
            "soc_pct": rng.uniform(95.0, 100.0, n),
            "mode": rng.choice(["float", "boost"], n, p=[0.95, 0.05]),
        }
    )
    return schema.conform(frame.with_columns(pl.col("ts").dt.replace_time_zone("UTC")), "telemetry")


@pytest.fixture(scope="module")
def environment() -> pl.DataFrame:
    rng = np.random.default_rng(2)
    frame = pl.DataFrame(
        {
            "site_id": "TH01",
            "ts": _timestamps(),
            "outdoor_temp_c": rng.normal(32.0, 3.0, STEPS),
            "room_temp_c": rng.normal(24.0, 1.0, STEPS),
            "humidity_pct": rng.uniform(40.0, 80.0, STEPS),
            "hvac_state": "normal",
            "grid_up": True,
        }
    )
    return schema.conform(frame, "environment")


def _every(n: int) -> pl.Expr:
    return pl.int_range(pl.len()) % n == 0


def _set(col: str, value: pl.Expr | float | str, every: int = 97) -> Callable:
    return lambda df: df.with_columns(
        pl.when(_every(every)).then(value).otherwise(pl.col(col)).alias(col)
    )


def _drop_share(share: float) -> Callable:
    """Drop a share of rows but never a battery's first or last, so the span stays whole."""
    def drop(df: pl.DataFrame) -> pl.DataFrame:
        rng = np.random.default_rng(3)
        edge = pl.col("ts").is_in([_timestamps()[0], _timestamps()[-1]])
        return df.filter(edge | pl.Series(rng.uniform(size=df.height) >= share))
    return drop


def _column(result, col: str) -> list[str]:
    return [line for line in result.failures if line.startswith(f"{col}:")]


def test_clean_telemetry_passes(telemetry: pl.DataFrame) -> None:
    result = validate_telemetry(telemetry, expected_step_s=STEP_S, expected_batteries=BATTERIES)
    assert result.passed, result.failures
    assert result.rows == BATTERIES * STEPS
    assert result.metadata["battery_id.count"] == BATTERIES
    assert result.metadata["ts.missing_share"] == 0.0
    assert result.metadata["gx.failed"] == 0
    json.dumps(result.metadata)
    assert all(type(v) in (int, float, str) for v in result.metadata.values())


def test_battery_major_order_passes(telemetry: pl.DataFrame) -> None:
    """Only the order within a battery matters, not how batteries are interleaved."""
    by_battery = telemetry.sort("battery_id", "ts", maintain_order=True)
    assert validate_telemetry(by_battery, expected_step_s=STEP_S).passed


CORRUPTIONS = {
    "nan_voltage": (_set("voltage_v", float("nan")), "voltage_v", "null or NaN"),
    "null_mode": (_set("mode", pl.lit(None, pl.String)), "mode", "null or NaN"),
    "millivolts": (_set("voltage_v", pl.col("voltage_v") * 1000), "voltage_v", "above 16.0 V"),
    "kelvin": (_set("temperature_c", pl.col("temperature_c") + 273.15), "temperature_c", "above"),
    "negative_soc": (_set("soc_pct", -5.0), "soc_pct", "below 0.0"),
    "duplicated_rows": (lambda df: pl.concat([df, df.slice(500, 30)]), "ts", "duplicate"),
    "out_of_order": (lambda df: df.reverse(), "ts", "not later than the previous row"),
    "bad_mode": (_set("mode", pl.lit("FLOAT")), "mode", "not in"),
    "gaps": (_drop_share(0.15), "ts", "missing"),
    "missing_column": (lambda df: df.drop("temperature_c"), "temperature_c", "column missing"),
    "naive_ts": (lambda df: df.with_columns(pl.col("ts").dt.replace_time_zone(None)), "ts", "type"),
    "lost_battery": (lambda df: df.filter(pl.col("battery_id") != "TH01-S1-B03"), "battery_id",
                     "expected 24"),
}


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_corrupted_telemetry_fails(telemetry: pl.DataFrame, name: str) -> None:
    corrupt, col, phrase = CORRUPTIONS[name]
    result = validate_telemetry(
        corrupt(telemetry), expected_step_s=STEP_S, expected_batteries=BATTERIES
    )
    assert not result.passed
    assert any(phrase in line for line in _column(result, col)), result.failures


def test_failure_line_counts_offending_values(telemetry: pl.DataFrame) -> None:
    result = validate_telemetry(
        _set("voltage_v", 13500.0, every=100)(telemetry), expected_step_s=STEP_S
    )
    assert result.failures == [
        f"voltage_v: 48 of {BATTERIES * STEPS:,} values above 16.0 V (max 13500)"
    ]
    assert result.metadata["voltage_v.above_max"] == 48


def test_gap_threshold_is_configurable(telemetry: pl.DataFrame) -> None:
    sparse = _drop_share(0.05)(telemetry)
    assert validate_telemetry(sparse, expected_step_s=STEP_S).passed
    strict = validate_telemetry(sparse, expected_step_s=STEP_S, max_gap_share=0.01)
    assert _column(strict, "ts") and not strict.passed


def test_empty_partition_fails(telemetry: pl.DataFrame) -> None:
    result = validate_telemetry(telemetry.clear(), expected_step_s=STEP_S)
    assert not result.passed and "telemetry: partition has no rows" in result.failures


def test_clean_environment_passes(environment: pl.DataFrame) -> None:
    result = validate_environment(environment, expected_step_s=STEP_S)
    assert result.passed, result.failures
    assert result.rows == STEPS


@pytest.mark.parametrize(
    ("corrupt", "col", "phrase"),
    [
        (_set("room_temp_c", pl.col("room_temp_c") + 273.15, every=1), "room_temp_c", "above"),
        (_set("humidity_pct", 140.0, every=10), "humidity_pct", "above 100.0"),
        (_set("hvac_state", pl.lit("broken"), every=10), "hvac_state", "not in"),
        (lambda df: pl.concat([df, df.tail(3)]), "ts", "duplicate"),
        (lambda df: df.drop("grid_up"), "grid_up", "column missing"),
    ],
    ids=["kelvin", "humidity", "bad_hvac_state", "duplicate_ts", "missing_column"],
)
def test_corrupted_environment_fails(
    environment: pl.DataFrame, corrupt: Callable, col: str, phrase: str
) -> None:
    result = validate_environment(corrupt(environment), expected_step_s=STEP_S)
    assert not result.passed
    assert any(phrase in line for line in _column(result, col)), result.failures
