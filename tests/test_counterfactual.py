"""Physics consistency of the trained champion on crafted histories (DOMAIN §6: hotter history,
lower RUL; faster resistance rise, lower RUL). Each in-service battery's last 120 days of the
small training fleet are scored as recorded, then as a monitor would have recorded them with
everything but one cause the same:

- a room a few degrees hotter: block temperature up, and the readings that follow temperature
  without any extra wear moved by the simulator's own laws (the ohmic reading falls ~1 %/degC,
  the charger's compensated float voltage falls, the float current rises);
- a resistance rising 10 % faster over the window (conductance its reciprocal).

The hotter room must shorten the P50, by roughly the ratio of Arrhenius ageing speeds over the
history (the simulator's life halving per 8.5 degC, the future taken to be like the past), not
by several times more, and never lengthen it; the faster rise must shorten it, and never
lengthen it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from champion import shared_champion

from models.predict import OK, predict_batteries
from models.registry import load_model
from simulator import physics as ph
from simulator.telemetry import OHMIC_TEMP_COEFF

WINDOW = dt.timedelta(days=120)
PHYSICS = ph.PhysicsParams()
BAND = 2.0  # the model's P50 ratio within a factor of this of the physics ratio


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    return shared_champion(tmp_path_factory)


@pytest.fixture(scope="module")
def model(champion):
    return load_model(tracking_uri=champion.tracking_uri)


@pytest.fixture(scope="module")
def tables(champion) -> dict[str, pl.DataFrame]:
    """The last WINDOW of telemetry, the batteries in service and the maintenance records."""
    telemetry = pl.read_parquet(champion.lake / "telemetry" / "*.parquet")
    return {
        "telemetry": telemetry.filter(pl.col("ts") > telemetry["ts"].max() - WINDOW),
        "batteries": pl.read_parquet(champion.lake / "batteries" / "*.parquet").filter(
            pl.col("removed_date").is_null()),
        "maintenance": pl.read_parquet(champion.lake / "maintenance_events" / "*.parquet"),
    }


def hotter_room(telemetry: pl.DataFrame, delta_c: float) -> pl.DataFrame:
    """The same history `delta_c` hotter (simulator.telemetry's measurement laws)."""
    p, temp = PHYSICS, pl.col("temperature_c")
    compensated = pl.col("mode").is_in(["float", "equalize"])
    lo, hi = p.float_comp_min_c, p.float_comp_max_c
    setpoint_shift = p.float_comp_v_per_c * ((temp + delta_c).clip(lo, hi) - temp.clip(lo, hi))
    return telemetry.with_columns(
        temperature_c=temp + delta_c,
        resistance_mohm=pl.col("resistance_mohm") * np.exp(-OHMIC_TEMP_COEFF * delta_c),
        conductance_s=pl.col("conductance_s") * np.exp(OHMIC_TEMP_COEFF * delta_c),
        voltage_v=pl.when(compensated).then(pl.col("voltage_v") + setpoint_shift)
        .otherwise("voltage_v"),
        current_a=pl.when(compensated)
        .then(pl.col("current_a") * 2 ** (delta_c / p.float_current_doubling_c))
        .otherwise("current_a"),
    )


def faster_resistance(telemetry: pl.DataFrame, rise: float) -> pl.DataFrame:
    """The same history with the resistance `rise` higher at its end, growing linearly."""
    elapsed = ((pl.col("ts") - pl.col("ts").min()) / (pl.col("ts").max() - pl.col("ts").min()))
    factor = 1 + rise * elapsed.over("battery_id")
    return telemetry.with_columns(resistance_mohm=pl.col("resistance_mohm") * factor,
                                  conductance_s=pl.col("conductance_s") / factor)


def p50_ratio(model, tables: dict[str, pl.DataFrame], crafted: pl.DataFrame,
              maintenance: bool) -> pl.DataFrame:
    """battery_id and the P50 of the crafted history over the P50 of the recorded one."""
    def p50(telemetry: pl.DataFrame) -> pl.DataFrame:
        scored = predict_batteries(telemetry, tables["batteries"],
                                   tables["maintenance"] if maintenance else None, model)
        return scored.filter(pl.col("status") == OK).select("battery_id", "rul_p50_days")
    return p50(tables["telemetry"]).join(p50(crafted), on="battery_id").select(
        "battery_id", ratio=pl.col("rul_p50_days_right") / pl.col("rul_p50_days"))


def speed_ratio(telemetry: pl.DataFrame, delta_c: float) -> pl.DataFrame:
    """Per battery: the mean Arrhenius ageing speed of its history, as is over `delta_c`
    hotter: the share of the remaining life a hotter future leaves."""
    def speed(t: pl.Series, shift: float) -> float:
        return float(ph.arrhenius_factor(t.to_numpy() + shift, PHYSICS).mean())
    per_battery = telemetry.group_by("battery_id").agg("temperature_c")
    return per_battery.select("battery_id", physics=pl.Series([
        speed(t, 0.0) / speed(t, delta_c) for t in per_battery["temperature_c"]]))


@pytest.mark.parametrize("maintenance", [True, False], ids=["maintenance", "telemetry_only"])
@pytest.mark.parametrize("delta_c", [3.0, 7.0])
def test_hotter_history_shortens_life_about_as_arrhenius_says(model, tables, delta_c,
                                                              maintenance):
    history = tables["telemetry"]
    joined = p50_ratio(model, tables, hotter_room(history, delta_c), maintenance).join(
        speed_ratio(history, delta_c), on="battery_id")

    assert joined.height >= 40
    assert (joined["ratio"] <= 1.0 + 1e-9).all(), joined.sort("ratio").tail(3)
    far = joined.filter((pl.col("ratio") < pl.col("physics") / BAND)
                        | (pl.col("ratio") > pl.col("physics") * BAND))
    assert far.height == 0, far
    assert joined["ratio"].median() < 1.0  # the model does read heat


def test_more_heat_shortens_more(model, tables):
    medians = [p50_ratio(model, tables, hotter_room(tables["telemetry"], d), True)["ratio"]
               .median() for d in (3.0, 7.0)]
    assert medians[1] < medians[0] < 1.0


@pytest.mark.parametrize("maintenance", [True, False], ids=["maintenance", "telemetry_only"])
def test_faster_resistance_rise_shortens_life(model, tables, maintenance):
    ratio = p50_ratio(model, tables, faster_resistance(tables["telemetry"], 0.10), maintenance)

    assert ratio.height >= 40
    # a faster rise also raises the resistance at past capacity tests, which the projection
    # reads as a higher new resistance: a unit may gain a little, never much (measured: +1.4 %
    # for one of 54 on the small test fleet)
    assert (ratio["ratio"] <= 1.02).all(), ratio.sort("ratio").tail(3)
    assert (ratio["ratio"] < 1.0).mean() >= 0.9  # a small booster may not split on every unit
    assert ratio["ratio"].median() <= 0.95
