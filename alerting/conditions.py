"""What every rule returns, and the catalogue of alert types.

A *condition* row says, for one entity (a battery, a string or a site), one alert type and one
reading time, how bad things are: the measured `value`, the `severity` it reaches (null when
within limits), the `threshold` of that severity, and whether the value is `cleared`, i.e. back
past the warning limit by the hysteresis margin. A row that is neither active nor cleared sits
in the hysteresis band: it keeps an open alert open and breaks a pending one. `since` is when
the row's evidence starts (the previous reading for a stuck sensor, the hour's start for
missing readings; `ts` otherwise), so durations count from the first evidence. The hold
columns say how long each severity must persist before an alert opens.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from simulator.schema import TS

WARNING, CRITICAL = "warning", "critical"
LEVELS = {WARNING: 1, CRITICAL: 2}  # ordered: an alert escalates to a higher level, never back

CONDITION = {
    "site_id": pl.String,
    "string_id": pl.String,
    "battery_id": pl.String,
    "type": pl.String,
    "ts": TS,
    "since": TS,
    "value": pl.Float64,
    "severity": pl.String,
    "threshold": pl.Float64,
    "cleared": pl.Boolean,
    "warning_hold_s": pl.Float64,
    "critical_hold_s": pl.Float64,
}
ENTITY = ("site_id", "string_id", "battery_id")


@dataclass(frozen=True)
class AlertType:
    """How an alert type reads to a person, and how the engine treats it."""

    name: str
    entity: str  # battery | string | site
    label: str
    unit: str
    digits: int = 2
    data_quality: bool = False  # about the monitor, not the battery
    value_is_duration: bool = False  # the value is how long the condition has held (minutes)


ALERT_TYPES: dict[str, AlertType] = {t.name: t for t in (
    AlertType("float_voltage", "battery", "float voltage at 25 °C", "V"),
    AlertType("temperature", "battery", "battery temperature", "°C", 1),
    AlertType("thermal_runaway", "battery",
              "thermal runaway (float current over its limit), block above room", "°C", 1),
    AlertType("resistance_rise", "battery", "internal resistance over baseline", "%", 1),
    AlertType("string_imbalance", "string", "float voltage spread between blocks", "V"),
    AlertType("stuck_sensor", "battery", "voltage and temperature unchanged for", "min", 0,
              data_quality=True, value_is_duration=True),
    AlertType("missing_readings", "battery", "readings missing in an hour", "%", 0,
              data_quality=True),
    AlertType("discharge_low_voltage", "battery", "block voltage on discharge", "V"),
    AlertType("rul", "battery", "predicted remaining life (P10)", "days", 0),
)}
SEVERITIES = tuple(LEVELS)


def message(alert_type: str, value: float | None, threshold: float | None,
            severity: str) -> str:
    """One line for people: what, how much, against which limit."""
    kind = ALERT_TYPES[alert_type]
    if value is None or threshold is None:
        return f"{kind.label} ({severity})"
    op = "<" if value < threshold else (">" if value > threshold else "at")
    return (f"{kind.label} {value:.{kind.digits}f} {kind.unit} {op} limit "
            f"{threshold:.{kind.digits}f} {kind.unit} ({severity})")


def entity_key() -> pl.Expr:
    """One text key per entity: ids are nested (site > string > battery), so site|string|battery
    names each entity once whatever its level."""
    return pl.concat_str([pl.col(c).fill_null("") for c in ENTITY], separator="|").alias("entity")


def empty_conditions() -> pl.DataFrame:
    return pl.DataFrame(schema=CONDITION)


def require_columns(frame: pl.DataFrame, columns: dict | tuple | list, name: str) -> None:
    """A clear one-line error naming the frame and what it lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {', '.join(missing)}")


def as_utc(expr: pl.Expr, dtype: pl.DataType, name: str) -> pl.Expr:
    """A date or datetime column as UTC microseconds (naive values are taken as UTC); `name`
    says which column in the error."""
    if dtype == pl.Date:
        return expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        return expr.dt.convert_time_zone("UTC").cast(TS)
    raise ValueError(f"{name}: expected a date or datetime column, got {dtype}")
