"""Shared fixtures: a two-site, eight-battery fleet and settings that keep every file in
`tmp_path`, so the pipeline tests run in seconds."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest
import tomlkit

from assets.resources.simulation import Simulation
from core.settings import Settings
from simulator.config import DEFAULT_FLEET_PATH, Fleet, parse_fleet

SMALL_DAYS = 7


def small_fleet_raw() -> dict:
    """The default fleet cut down to its first two sites, each 1 system x 1 string x 4 blocks."""
    raw = tomllib.loads(DEFAULT_FLEET_PATH.read_text(encoding="utf-8"))
    sites = []
    for site in raw["sites"][:2]:
        system = site["systems"][0] | {"strings": 1, "blocks_per_string": 4}
        system["string_installed"] = system.get("string_installed", [site["commissioned"]])[:1]
        sites.append(site | {"systems": [system], "unit_replacements": []})
    return raw | {"sites": sites}


@pytest.fixture
def small_fleet() -> Fleet:
    return parse_fleet(small_fleet_raw(), source="small fleet")


@pytest.fixture
def fleet_toml(tmp_path: Path) -> Path:
    path = tmp_path / "small_fleet.toml"
    path.write_text(tomlkit.dumps(small_fleet_raw()), encoding="utf-8")
    return path


@pytest.fixture
def settings(tmp_path: Path, fleet_toml: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        fleet_config=fleet_toml,
        seed=7,
        start=dt.date(2024, 1, 1),
        days=SMALL_DAYS,
        step_s=3600,
    )


@pytest.fixture
def corrupt_site(monkeypatch):
    """Call with a site id: from then on its simulated telemetry has impossible voltages."""

    def corrupt(site_id: str) -> None:
        simulate = Simulation.simulate

        def corrupted(self: Simulation, site: str):
            history = simulate(self, site)
            if site == site_id:
                chunks = history.telemetry_chunks
                history.telemetry_chunks = lambda: (c.with_columns(voltage_v=-1.0) for c in chunks())
            return history

        monkeypatch.setattr(Simulation, "simulate", corrupted)

    return corrupt
