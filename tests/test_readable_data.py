"""What site engineers read, on the dashboards' data folder (tests/dashboard_data.py): the
site page's resistance against its own baseline is compared at 25 °C, as the model compares
it, so a block in a hot room does not look healthier than it is."""

from __future__ import annotations

import polars as pl
import pytest
from dashboard_data import shared_dashboard

from models.features import per_battery
from reporting.fleet import FleetReader


@pytest.fixture(scope="module")
def dash(tmp_path_factory):
    return shared_dashboard(tmp_path_factory)


def test_resistance_vs_baseline_is_at_25c_so_a_hot_room_does_not_flatter(dash, monkeypatch):
    """The same block read 10 °C hotter reads ~10 % lower (ohmics fall as a block warms):
    corrected to 25 °C as the model corrects it, its rise over its baseline does not move."""
    reader = FleetReader(dash.settings)
    before = reader.battery_status().select("battery_id", "resistance_vs_baseline_pct")
    assert before["resistance_vs_baseline_pct"].null_count() == 0
    assert before["resistance_vs_baseline_pct"].abs().max() < 100  # a rise, not a unit slip
    coeff = per_battery(reader.batteries()).select("battery_id", "ohmic_temp_coeff_per_c")
    readings = FleetReader.latest_readings

    def in_a_hotter_room(self, site_id=None):
        return readings(self, site_id).join(coeff, on="battery_id").with_columns(
            pl.col("temperature_c").cast(pl.Float64) + 10.0,
            pl.col("resistance_mohm") * (-10.0 * pl.col("ohmic_temp_coeff_per_c")).exp(),
        ).drop("ohmic_temp_coeff_per_c")

    monkeypatch.setattr(FleetReader, "latest_readings", in_a_hotter_room)
    after = reader.battery_status().select("battery_id", hot="resistance_vs_baseline_pct")
    both = before.join(after, on="battery_id")
    assert both.height == before.height
    assert ((both["hot"] - both["resistance_vs_baseline_pct"]).abs() < 0.01).all()

