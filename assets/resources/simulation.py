"""The simulation resource: which fleet, seed and time window the data assets simulate."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from simulator.config import Fleet, load_fleet
from simulator.generate import SiteHistory, Window, simulate_site


class Simulation(dg.ConfigurableResource):
    """Which fleet, seed and window to simulate; built from `core.settings`."""

    fleet_config: str | None = None  # None: the fleet shipped with the simulator
    seed: int = 42
    start: str = "2024-01-01"  # ISO date; Dagster config has no date type
    days: int = 730
    step_s: int = 3600

    def fleet(self) -> Fleet:
        return load_fleet(self.fleet_config)

    def window(self) -> Window:
        return Window(dt.date.fromisoformat(self.start), self.days, self.step_s)

    def simulate(self, site_id: str) -> SiteHistory:
        return simulate_site(self.fleet(), site_id, self.window(), self.seed)
