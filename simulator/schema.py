"""Column names and types of every table the simulator writes: the contract for the
warehouse, the validation suites and the feature code. Timestamps are UTC."""

from __future__ import annotations

import polars as pl

TS = pl.Datetime("us", "UTC")

SITES = {
    "site_id": pl.String,
    "name": pl.String,
    "region": pl.String,
    "commissioned": pl.Date,
    "hvac_setpoint_c": pl.Float64,
    "hotspot_c": pl.Float64,
    "float_offset_v": pl.Float64,
}
SYSTEMS = {
    "system_id": pl.String,
    "site_id": pl.String,
    "kind": pl.String,
    "battery_model": pl.String,
    "strings": pl.Int32,
    "blocks_per_string": pl.Int32,
    "load_a": pl.Float64,
}
STRINGS = {
    "string_id": pl.String,
    "system_id": pl.String,
    "site_id": pl.String,
    "string_no": pl.Int32,
    "installed": pl.Date,
}
BATTERIES = {
    "battery_id": pl.String,
    "string_id": pl.String,
    "site_id": pl.String,
    "position": pl.Int32,
    "battery_model": pl.String,
    "rated_capacity_ah": pl.Float64,
    "serial": pl.String,
    "install_date": pl.Date,
    "removed_date": pl.Date,
    "warranty_end": pl.Date,
}
ENVIRONMENT = {
    "site_id": pl.String,
    "ts": TS,
    "outdoor_temp_c": pl.Float32,
    "room_temp_c": pl.Float32,
    "humidity_pct": pl.Float32,
    "hvac_state": pl.String,
    "grid_up": pl.Boolean,
}
TELEMETRY = {
    "ts": TS,
    "battery_id": pl.String,
    "string_id": pl.String,
    "site_id": pl.String,
    "voltage_v": pl.Float32,
    "current_a": pl.Float32,
    "temperature_c": pl.Float32,
    "resistance_mohm": pl.Float32,
    "conductance_s": pl.Float32,
    "soc_pct": pl.Float32,
    "mode": pl.String,
}
DISCHARGE_EVENTS = {
    "event_id": pl.String,
    "site_id": pl.String,
    "system_id": pl.String,
    "string_id": pl.String,
    "start_ts": TS,
    "end_ts": TS,
    "outage_minutes": pl.Float64,
    "generator_started": pl.Boolean,
    "depth_of_discharge": pl.Float64,
    "ah_drawn": pl.Float64,
    "runtime_minutes": pl.Float64,  # time on battery (to 1.75 V/cell if it ran out)
    "load_lost": pl.Boolean,  # the string reached its cutoff before power came back
    "min_block_voltage_v": pl.Float64,
    "min_block_battery_id": pl.String,
}
DISCHARGE_CURVES = {
    "event_id": pl.String,
    "battery_id": pl.String,
    "ts": TS,
    "voltage_v": pl.Float32,
    "current_a": pl.Float32,
}
MAINTENANCE_EVENTS = {
    "ts": TS,
    "site_id": pl.String,
    "string_id": pl.String,
    "battery_id": pl.String,
    "event_type": pl.String,  # ohmic_reading | capacity_test | replacement
    "resistance_mohm": pl.Float64,
    "measured_capacity_ah": pl.Float64,  # Ah delivered at the test rate to 1.75 V/cell
    "test_rate_hours": pl.Float64,  # capacity tests: the rate they ran at (3 = the 3-hour rate)
    "new_battery_id": pl.String,
    "reason": pl.String,
}
BATTERY_TRUTH = {
    "battery_id": pl.String,
    "site_id": pl.String,
    "ts": TS,
    "capacity_ah": pl.Float64,
    "soh_pct": pl.Float64,
    "true_rul_days": pl.Float64,
    "failure_mode": pl.String,
}

TABLES: dict[str, dict[str, pl.DataType]] = {
    "sites": SITES,
    "systems": SYSTEMS,
    "strings": STRINGS,
    "batteries": BATTERIES,
    "environment": ENVIRONMENT,
    "telemetry": TELEMETRY,
    "discharge_events": DISCHARGE_EVENTS,
    "discharge_curves": DISCHARGE_CURVES,
    "maintenance_events": MAINTENANCE_EVENTS,
    "battery_truth": BATTERY_TRUTH,
}

MODES = ("float", "boost", "equalize", "discharge")
HVAC_STATES = ("normal", "degraded", "failed")
FAILURE_MODES = (
    "grid_corrosion",
    "dry_out",
    "sulfation",
    "thermal_runaway",
    "early_life_defect",
    "internal_short",
)


def conform(df: pl.DataFrame, table: str) -> pl.DataFrame:
    """Select and cast the table's columns in contract order (raises if one is missing)."""
    schema = TABLES[table]
    return df.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])


def empty(table: str) -> pl.DataFrame:
    return pl.DataFrame(schema=TABLES[table])
