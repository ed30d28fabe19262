"""The simulator end to end on a small fleet: reproducibility, the tables' physics and the
failure-mode signatures of DOMAIN.md §3."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from conftest import small_fleet_raw

from simulator import physics as ph
from simulator.config import parse_fleet
from simulator.generate import Window, fleet_tables, simulate_site
from simulator.schema import TABLES

WINDOW = Window(dt.date(2024, 1, 1), 60, 3600)


def fleet(strings: int = 2, blocks: int = 6):
    raw = small_fleet_raw()
    for site in raw["sites"]:
        system = site["systems"][0]
        system["strings"], system["blocks_per_string"] = strings, blocks
        system["string_installed"] = [system["string_installed"][0]] * strings
    return parse_fleet(raw)


@pytest.fixture(scope="module")
def history():
    f = fleet()
    return simulate_site(f, f.sites[0].code, WINDOW, seed=3)


def test_tables_follow_the_contract(history):
    telemetry = history.telemetry()
    for name in ("environment", "batteries", "discharge_events", "discharge_curves",
                 "maintenance_events", "battery_truth"):
        assert getattr(history, name).schema == pl.Schema(TABLES[name]), name
    assert telemetry.schema == pl.Schema(TABLES["telemetry"])
    assert set(fleet_tables(fleet())) == {"sites", "systems", "strings"}
    assert history.environment.height == WINDOW.days * 24
    assert telemetry.height > 0.9 * WINDOW.days * 24 * 12


def test_same_seed_same_history_and_other_seed_differs():
    f = fleet(1, 4)
    site = f.sites[0].code
    a, b = (simulate_site(f, site, WINDOW, seed=5) for _ in range(2))
    c = simulate_site(f, site, WINDOW, seed=6)
    assert a.telemetry().equals(b.telemetry())
    assert a.battery_truth.equals(b.battery_truth)
    assert a.environment.equals(b.environment)
    assert not a.telemetry()["voltage_v"].equals(c.telemetry()["voltage_v"])
    assert not a.environment["outdoor_temp_c"].equals(c.environment["outdoor_temp_c"])


def test_truth_does_not_depend_on_the_output_step():
    """The physics runs on its own clock; the sampling step changes only the telemetry."""
    f = fleet(1, 4)
    site = f.sites[0].code
    hourly = simulate_site(f, site, WINDOW, seed=5)
    daily = simulate_site(f, site, Window(WINDOW.start, WINDOW.days, 86_400), seed=5)
    assert hourly.battery_truth.equals(daily.battery_truth)
    assert daily.environment.height == WINDOW.days


def test_capacity_never_rises_without_a_replacement(history):
    steps = history.battery_truth.sort("battery_id", "ts").with_columns(
        rise=pl.col("capacity_ah").diff().over("battery_id"))
    assert steps["rise"].drop_nulls().max() <= 1e-9
    rul = history.battery_truth.sort("battery_id", "ts").with_columns(
        d=pl.col("true_rul_days").diff().over("battery_id"))["d"].drop_nulls()
    assert rul.max() <= 1e-9  # remaining life only shrinks (by a day a day, or faster)


def test_batteries_in_service_start_aged_not_new(history):
    first_day = history.battery_truth.filter(pl.col("ts") == pl.col("ts").min())
    installed = history.batteries.filter(pl.col("install_date") < WINDOW.start)
    assert installed.height > 0
    assert first_day["soh_pct"].mean() < 97.0  # years of Thai service leave them worn


def test_healthy_blocks_float_in_band_and_charging_raises_voltage(history):
    telemetry = history.telemetry().join(
        history.battery_truth.select("battery_id", "ts", "soh_pct"), on=["battery_id", "ts"])
    healthy = telemetry.filter((pl.col("mode") == "float") & (pl.col("soh_pct") > 90))
    assert healthy.height > 100
    # referred to 25 degC through the -18 mV/degC compensation (DOMAIN §3)
    at_25c = healthy["voltage_v"] + 0.018 * (healthy["temperature_c"] - 25.0)
    assert at_25c.is_between(13.38, 13.80).mean() > 0.97
    boost = telemetry.filter(pl.col("mode") == "boost")
    if boost.height:
        assert boost["voltage_v"].median() > healthy["voltage_v"].median()
        assert (boost["voltage_v"] < 14.1 + 0.018 * 20 + 0.1).all()  # the compensated limit
        assert (boost["current_a"] > 0).all()
    discharging = telemetry.filter(pl.col("mode") == "discharge")
    if discharging.height:
        assert (discharging["current_a"] < 0).all()
        assert (discharging["voltage_v"] < 12.9).all()


def test_thermal_runaway_shows_its_signature():
    """Float current > 3x normal and the block >= 5 degC above the room, climbing (DOMAIN §3)."""
    f = fleet(1, 6)
    params = ph.PhysicsParams(runaway_rate_per_year=40.0)
    h = simulate_site(f, f.sites[0].code, WINDOW, seed=2, params=params)
    tel = h.telemetry().join(h.environment.select("ts", "room_temp_c"), on="ts")
    removed = h.maintenance_events.filter(pl.col("reason") == "thermal runaway")
    assert removed.height > 0
    victim = removed["battery_id"][0]
    last = tel.filter(pl.col("battery_id") == victim).sort("ts").filter(pl.col("mode") == "float")
    final = last.tail(6)
    rated = h.batteries.filter(pl.col("battery_id") == victim)["rated_capacity_ah"][0]
    room = final["room_temp_c"].to_numpy()
    normal = ph.float_current(rated, room, ph.float_setpoint(room, params), params)
    # the string's current (one current in a series circuit) against a healthy string's
    assert (final["current_a"].to_numpy() > 3 * normal).all()
    assert (final["temperature_c"] - final["room_temp_c"]).min() >= 5.0
    # climbing over hours: the first half-day past 5 degC over the room keeps rising (measured
    # against the room, so a cooling night does not hide it)
    excess = last.select(excess=pl.col("temperature_c") - pl.col("room_temp_c"))["excess"]
    onset = excess.filter(excess >= 5.0).head(12)
    assert onset.len() == 12 and onset[-1] - onset[0] > 2.0


def test_internal_short_drops_one_cell():
    f = fleet(1, 6)
    params = ph.PhysicsParams(short_rate_per_year=30.0)
    h = simulate_site(f, f.sites[0].code, WINDOW, seed=4, params=params)
    shorted = h.maintenance_events.filter(pl.col("reason").str.starts_with("internal short"))
    assert shorted.height > 0
    tel = h.telemetry().filter(pl.col("mode") == "float")
    victim = tel.filter(pl.col("battery_id") == shorted["battery_id"][0]).sort("ts").tail(6)
    peers = tel.filter(pl.col("battery_id") != shorted["battery_id"][0]).group_by("ts").agg(
        peer_v=pl.col("voltage_v").median())
    drop = victim.join(peers, on="ts").select(pl.col("peer_v") - pl.col("voltage_v"))
    assert drop.to_series().is_between(1.6, 2.6).all()


def test_replacements_bring_new_units_with_their_own_ids(history):
    swaps = history.maintenance_events.filter(pl.col("event_type") == "replacement")
    ids = set(history.batteries["battery_id"])
    for old, new in swaps.select("battery_id", "new_battery_id").iter_rows():
        assert old in ids and new in ids
        assert history.batteries.filter(pl.col("battery_id") == old)["removed_date"][0] is not None
