"""The static fleet tables, written once from the fleet config."""

from collections.abc import Iterator

import dagster as dg

from assets.metadata import table_metadata
from assets.resources.simulation import Simulation
from assets.resources.storage import LakeStorage
from simulator.generate import fleet_tables

DESCRIPTIONS = {
    "sites": "One row per data centre: region, commissioning date, HVAC set point, hot spot.",
    "systems": "One row per DC system (UPS or rectifier): battery model, strings, load.",
    "strings": "One row per battery string with its install date.",
}
FLEET_SPECS = [
    dg.AssetSpec(["lake", table], description=text, group_name="data", kinds={"parquet"})
    for table, text in DESCRIPTIONS.items()
]


@dg.multi_asset(name="fleet", specs=FLEET_SPECS)
def fleet(storage: LakeStorage, simulation: Simulation) -> Iterator[dg.MaterializeResult]:
    """Write the sites, systems and strings of the configured fleet to the lake."""
    written = storage.write_fleet(fleet_tables(simulation.fleet()))
    for table, result in written.items():
        yield dg.MaterializeResult(asset_key=["lake", table], metadata=table_metadata(result))
