"""Fleet history generation: the one entry point the CLI, the Dagster assets and the
benchmarks call. Sites are independent, so each is simulated (and written) on its own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl

from simulator.config import Fleet


@dataclass(frozen=True)
class Window:
    """The observed history: `days` days from `start` (UTC midnight), sampled every `step_s`."""

    start: dt.date
    days: int
    step_s: int = 3600

    def __post_init__(self) -> None:
        if self.days <= 0:
            raise ValueError(f"days must be positive, got {self.days}")
        if not 1 <= self.step_s <= 86_400 or 86_400 % self.step_s:
            raise ValueError(f"step must divide one day (1 s .. 1 d), got {self.step_s} s")


@dataclass
class SiteHistory:
    """Everything simulated for one site. Telemetry is produced lazily, chunk by chunk, so a
    60-second history never has to fit in memory."""

    site_id: str
    environment: pl.DataFrame
    batteries: pl.DataFrame
    discharge_events: pl.DataFrame
    discharge_curves: pl.DataFrame
    maintenance_events: pl.DataFrame
    battery_truth: pl.DataFrame

    def telemetry_chunks(self) -> Iterator[pl.DataFrame]:
        raise NotImplementedError


def fleet_tables(fleet: Fleet) -> dict[str, pl.DataFrame]:
    """The static fleet tables `sites`, `systems` and `strings`."""
    raise NotImplementedError


def simulate_site(fleet: Fleet, site_id: str, window: Window, seed: int) -> SiteHistory:
    raise NotImplementedError
