"""The fleet config: the default fleet of DOMAIN.md §1 and clear errors for bad configs."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest

from simulator.config import DEFAULT_FLEET_PATH, FleetConfigError, load_fleet, parse_fleet
from simulator.fleet import fleet_tables


def raw() -> dict:
    return tomllib.loads(DEFAULT_FLEET_PATH.read_text(encoding="utf-8"))


def test_default_fleet_is_the_domain_fleet():
    fleet = load_fleet()
    tables = fleet_tables(fleet)
    assert tables["sites"].height == 9
    assert tables["systems"].height == 18
    assert tables["strings"].height == 81
    assert fleet.battery_count == 1944
    small = sum(s.strings * s.blocks_per_string for site in fleet.sites for s in site.systems
                if s.battery_model == "AGM12-100")
    assert 0.15 <= small / 1944 <= 0.25  # ~20 % of the fleet is the 100 Ah model
    installs = {d for site in fleet.sites for s in site.systems for d in s.string_installed}
    assert len(installs) > 9  # mixed ages: strings re-strung after commissioning


def test_scale_reaches_benchmark_sizes():
    fleet = load_fleet(scale=52)
    assert fleet.battery_count >= 100_000
    assert len({s.code for s in fleet.sites}) == 9 * 52


def _error(mutate) -> str:
    data = raw()
    mutate(data)
    with pytest.raises(FleetConfigError) as exc:
        parse_fleet(data, source="fleet.toml", today=dt.date(2026, 1, 1))
    message = str(exc.value)
    assert message.startswith("fleet.toml: ") and "\n" not in message
    return message


def test_unknown_region():
    msg = _error(lambda d: d["sites"][0].update(region="arctic"))
    assert "sites[0] (DC-CNX-01).region" in msg and "arctic" in msg and "northern" in msg


def test_duplicate_site_code():
    msg = _error(lambda d: d["sites"][1].update(code=d["sites"][0]["code"]))
    assert "duplicate" in msg and "DC-CNX-01" in msg


def test_non_positive_capacity():
    msg = _error(lambda d: d["battery_models"][0].update(rated_capacity_ah=0))
    assert "battery_models.0.rated_capacity_ah" in msg and "greater than 0" in msg


def test_install_date_in_the_future():
    msg = _error(lambda d: d["sites"][0]["unit_replacements"][0].update(date=dt.date(2031, 5, 1)))
    assert "2031-05-01" in msg and "future" in msg


def test_unknown_battery_model_and_wrong_string_dates():
    msg = _error(lambda d: d["sites"][0]["systems"][0].update(battery_model="LFP-200"))
    assert "battery_model" in msg and "LFP-200" in msg
    msg = _error(lambda d: d["sites"][0]["systems"][0].update(string_installed=[]))
    assert "string_installed" in msg and "0 dates for 3 strings" in msg


def test_unknown_field_is_reported():
    msg = _error(lambda d: d["site_defaults"].update(hvac_setpiont_c=22))
    assert "hvac_setpiont_c" in msg


def test_file_errors(tmp_path: Path):
    with pytest.raises(FleetConfigError, match="file not found"):
        load_fleet(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[sites]\ncode = ", encoding="utf-8")
    with pytest.raises(FleetConfigError, match="bad.toml: not valid TOML"):
        load_fleet(bad)
    with pytest.raises(FleetConfigError, match="positive whole number"):
        load_fleet(scale=0)
