"""The replacement plan and the what-if, fed from what the platform has written: the newest
scores, the batteries in service, the fleet config's battery models and a site's last year of
room readings. The arithmetic lives in `models.replacement` and `models.whatif`; this module
only gathers their inputs, so the dashboards and the PDF report plan from the same numbers."""

from __future__ import annotations

import datetime as dt

import polars as pl

from reporting.fleet import FleetReader
from reporting.readings import history_files, live_files

WHAT_IF_YEAR = dt.timedelta(days=365)  # one full seasonal cycle of room temperature


def costs(reader: FleetReader):
    from models.replacement import load_costs

    return load_costs(reader.settings.costs_config)


def replacement_plan(reader: FleetReader, horizon_days: int = 365):
    """The plan over the newest scores (models.replacement.plan)."""
    from models.replacement import plan

    return plan(reader.latest_predictions(), reader.table("batteries"), costs(reader),
                horizon_days=horizon_days)


def site_environment(reader: FleetReader, site_id: str, since: dt.datetime) -> pl.DataFrame:
    """A site's raw room readings from `since` (history and live), hourly means: the what-if
    integrates ageing over hours, and the live ticks would otherwise outweigh the history."""
    lake = reader.lake
    scans = [pl.scan_parquet(f) for f in history_files(lake, "environment", site_id)]
    scans += [pl.scan_parquet(f).drop("date", strict=False)
              for f in live_files(lake, "environment", since)]
    if not scans:
        return pl.DataFrame()
    return (pl.concat(scans, how="diagonal_relaxed")
            .filter((pl.col("site_id") == site_id) & (pl.col("ts") >= since))
            .sort("ts").group_by_dynamic("ts", every="1h")
            .agg(pl.col("room_temp_c", "outdoor_temp_c").mean(),
                 hvac_state=pl.col("hvac_state").mode().first())
            .collect())


def what_if(reader: FleetReader, site_id: str, setpoint_delta_c: float,
            remove_hvac_faults: bool):
    """Baseline against a changed set point or fault-free HVAC for one site
    (models.whatif.what_if), over the site's last year of readings."""
    from models.whatif import Scenario
    from models.whatif import what_if as compute
    from simulator.config import load_fleet

    sites = reader.table("sites").filter(pl.col("site_id") == site_id)
    if sites.is_empty():
        raise ValueError(f"unknown site {site_id!r}")
    site = sites.row(0, named=True)
    predictions = reader.latest_predictions()
    predictions = predictions.filter(pl.col("site_id") == site_id) \
        if "site_id" in predictions.columns else predictions
    if predictions.is_empty():
        raise ValueError(f"{site_id}: no prediction yet, so nothing to project")
    end = reader.newest()["ts"]
    environment = site_environment(reader, site_id, end - WHAT_IF_YEAR)
    fleet = load_fleet(reader.settings.fleet_config)
    return compute(predictions, environment, reader.table("batteries"), fleet.battery_models,
                   costs(reader), Scenario(setpoint_delta_c, remove_hvac_faults),
                   setpoint_c=site["hvac_setpoint_c"], hotspot_c=site["hotspot_c"])
