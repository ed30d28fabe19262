"""Each site's simulated history: one simulation produces every site table at once, so one
multi-asset per site partition writes them all, then publishes them together if the site's
sensor data passes its blocking checks."""

from collections.abc import Iterator

import dagster as dg

from assets.metadata import table_metadata
from assets.resources.simulation import Simulation
from assets.resources.storage import LakeStorage
from assets.validation.checks import check_specs, validate_site
from simulator.live.seed import live_seed, save_seed

DESCRIPTIONS = {
    "environment": "Outdoor and battery-room climate, HVAC state and grid status per step.",
    "telemetry": "Per-battery voltage, current, temperature, ohmic readings, SoC and mode.",
    "batteries": "Every battery unit that served at the site, with install/removal dates.",
    "discharge_events": "Grid outages that discharged a string: duration, depth, worst block.",
    "discharge_curves": "Per-battery voltage and current during each discharge event.",
    "maintenance_events": "Ohmic readings, capacity tests and replacements by technicians.",
    "battery_truth": "Hidden ground truth per battery: capacity, SoH, true RUL, failure mode.",
}


def build_site_history(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The per-site multi-asset for the configured sites (partitions come from the fleet)."""
    specs = [
        dg.AssetSpec(
            ["lake", table],
            description=text,
            group_name="data",
            kinds={"parquet"},
            deps=[dg.AssetKey(["lake", "strings"])],
            skippable=True,  # not materialized when the site is quarantined
        )
        for table, text in DESCRIPTIONS.items()
    ]

    @dg.multi_asset(
        name="site_history",
        specs=specs,
        check_specs=check_specs(partitions),
        partitions_def=partitions,
        can_subset=False,
    )
    def site_history(
        context: dg.AssetExecutionContext, storage: LakeStorage, simulation: Simulation
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        """Simulate one site, stage its tables, validate them and publish or quarantine; a
        published site also leaves its end-of-history state for the live simulator."""
        site_id = context.partition_key
        history = simulation.simulate(site_id)
        staged = storage.stage_site(history)
        try:
            results = validate_site(staged, step_s=simulation.step_s)
        except BaseException:
            storage.quarantine(staged)  # never leave a staged site behind
            raise
        yield from results
        if not all(result.passed for result in results):
            where = storage.quarantine(staged)
            context.log.error(f"{site_id} failed validation; quarantined in {where}")
            return
        published = storage.publish(staged)
        seed = save_seed(live_seed(history), storage.lake_dir)  # where the live run starts
        for table, written in published.items():
            metadata = table_metadata(written)
            if table == "battery_truth":
                metadata["live_state"] = dg.MetadataValue.path(str(seed))
            yield dg.MaterializeResult(asset_key=["lake", table], metadata=metadata)

    return site_history
