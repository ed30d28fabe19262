"""DOMAIN §5's alert rules, one vectorised function each, over a batch of live readings.

Every rule takes frames with the simulator's column contracts (`simulator.schema.TELEMETRY`,
`ENVIRONMENT`), the baselines of `alerting.baselines` and the one threshold config, applies the
limits in effect at each row's site and season, and returns condition rows
(`alerting.conditions.CONDITION`). Rows a rule cannot judge (another charge mode, no baseline,
no room reading) are left out rather than called healthy: no data is not a clearance.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from alerting.conditions import (
    CONDITION,
    CRITICAL,
    WARNING,
    as_utc,
    empty_conditions,
    require_columns,
)
from alerting.limits import with_limits
from simulator.schema import TELEMETRY
from simulator.thresholds import Thresholds

REFERENCE_C = 25.0  # the float band is quoted at 25 degC (DOMAIN §3)
IMMEDIATE = 0.0  # DOMAIN §5 gives these levels no duration: the first reading opens them
# Rooms are often logged less often than blocks. Even when cooling fails a room warms ~2 degC/h
# (DOMAIN §2), so the latest reading up to an hour old is a fair room; the runaway rule also
# needs 3x float current, so a stale room alone cannot raise it.
ROOM_READING_MAX_AGE = dt.timedelta(hours=1)
HOUR_US = 3_600_000_000
BASELINES = ("battery_id", "resistance_baseline_mohm", "float_current_baseline_a")
ROSTER = ("site_id", "string_id", "battery_id")
PREDICTIONS = ("battery_id", "site_id", "string_id", "as_of", "rul_p10_days", "status")


def _conditions(frame: pl.DataFrame, kind: str, *, value: pl.Expr, severity: pl.Expr,
                threshold: pl.Expr, cleared: pl.Expr, warning_hold_min: pl.Expr | float,
                critical_hold_min: pl.Expr | float = IMMEDIATE, since: str = "ts",
                battery: bool = True) -> pl.DataFrame:
    """The rule's rows in the condition contract."""
    return frame.select(
        pl.col("site_id"),
        pl.col("string_id"),
        (pl.col("battery_id") if battery else pl.lit(None, pl.String)).alias("battery_id"),
        pl.lit(kind).alias("type"),
        pl.col("ts"),
        pl.col(since).alias("since"),
        value.cast(pl.Float64).alias("value"),
        severity.cast(pl.String).alias("severity"),
        threshold.cast(pl.Float64).alias("threshold"),
        cleared.fill_null(False).alias("cleared"),
        (_expr(warning_hold_min) * 60.0).cast(pl.Float64).alias("warning_hold_s"),
        (_expr(critical_hold_min) * 60.0).cast(pl.Float64).alias("critical_hold_s"),
    ).cast(CONDITION)


def _expr(x: pl.Expr | float) -> pl.Expr:
    return x if isinstance(x, pl.Expr) else pl.lit(x)


def _two_level(value: pl.Expr, warning: pl.Expr, critical: pl.Expr,
               below: bool = False) -> tuple[pl.Expr, pl.Expr]:
    """Severity and its threshold for a value that is bad above (or below) two limits."""
    worse = (lambda v, lim: v < lim) if below else (lambda v, lim: v > lim)
    severity = (pl.when(worse(value, critical)).then(pl.lit(CRITICAL))
                .when(worse(value, warning)).then(pl.lit(WARNING)))
    threshold = pl.when(worse(value, critical)).then(critical).otherwise(warning)
    return severity, threshold


def float_voltage(telemetry: pl.DataFrame, thresholds: Thresholds) -> pl.DataFrame:
    """Float voltage outside the band per block, referred to 25 degC with the chargers'
    compensation (and its clamp), on float rows only."""
    t = with_limits(telemetry.filter(pl.col("mode") == "float").drop_nulls(
        ["voltage_v", "temperature_c"]), thresholds)
    temp = pl.col("temperature_c").clip(pl.col("float_voltage.compensation_min_c"),
                                        pl.col("float_voltage.compensation_max_c"))
    v25 = pl.col("voltage_v") - pl.col("float_voltage.compensation_v_per_c") * (temp - REFERENCE_C)
    low, high, margin = (pl.col("float_voltage.low_v"), pl.col("float_voltage.high_v"),
                         pl.col("hysteresis.voltage_v"))
    return _conditions(
        t, "float_voltage", value=v25,
        severity=pl.when((v25 < low) | (v25 > high)).then(pl.lit(WARNING)),
        threshold=pl.when(v25 < (low + high) / 2).then(low).otherwise(high),
        cleared=(v25 >= low + margin) & (v25 <= high - margin),
        warning_hold_min=pl.col("float_voltage.warning_minutes"))


def temperature(telemetry: pl.DataFrame, thresholds: Thresholds) -> pl.DataFrame:
    """Battery temperature over the warning limit (held) or the critical limit, any mode."""
    t = with_limits(telemetry.drop_nulls("temperature_c"), thresholds)
    value = pl.col("temperature_c")
    warning, critical = pl.col("temperature.warning_c"), pl.col("temperature.critical_c")
    severity, threshold = _two_level(value, warning, critical)
    return _conditions(
        t, "temperature", value=value, severity=severity, threshold=threshold,
        cleared=value <= warning - pl.col("hysteresis.temperature_c"),
        warning_hold_min=pl.col("temperature.warning_minutes"),
        critical_hold_min=pl.col("temperature.critical_minutes"))


def thermal_runaway(telemetry: pl.DataFrame, environment: pl.DataFrame, baselines: pl.DataFrame,
                    thresholds: Thresholds) -> pl.DataFrame:
    """A block at least `above_room_c` over its room while its float current exceeds
    `float_current_ratio` x its own normal: both together, critical at once. The value is the
    rise over room; it clears when either the rise or the current ratio falls back."""
    rooms = (environment.drop_nulls("room_temp_c").select("site_id", "ts", "room_temp_c")
             .sort("site_id", "ts"))
    t = (telemetry.filter(pl.col("mode") == "float").drop_nulls(["temperature_c", "current_a"])
         .join(baselines.filter(pl.col("float_current_baseline_a") > 0)
               .select("battery_id", "float_current_baseline_a"), on="battery_id")
         .sort("site_id", "ts")
         .join_asof(rooms, on="ts", by="site_id", strategy="backward",
                    tolerance=ROOM_READING_MAX_AGE, check_sortedness=False)
         .drop_nulls("room_temp_c"))
    t = with_limits(t, thresholds)
    rise = pl.col("temperature_c") - pl.col("room_temp_c")
    ratio = pl.col("current_a") / pl.col("float_current_baseline_a")
    above, ratio_limit = pl.col("thermal_runaway.above_room_c"), pl.col(
        "thermal_runaway.float_current_ratio")
    return _conditions(
        t, "thermal_runaway", value=rise,
        severity=pl.when((rise >= above) & (ratio > ratio_limit)).then(pl.lit(CRITICAL)),
        threshold=above,
        cleared=(rise <= above - pl.col("hysteresis.temperature_c"))
        | (ratio <= ratio_limit - pl.col("hysteresis.current_ratio")),
        warning_hold_min=IMMEDIATE)


def resistance_rise(telemetry: pl.DataFrame, baselines: pl.DataFrame,
                    thresholds: Thresholds) -> pl.DataFrame:
    """Internal resistance over the battery's own baseline, in percent, on float rows (ohmic
    values rise as a block discharges, so only full-charge readings compare)."""
    t = (telemetry.filter(pl.col("mode") == "float").drop_nulls("resistance_mohm")
         .join(baselines.filter(pl.col("resistance_baseline_mohm") > 0)
               .select("battery_id", "resistance_baseline_mohm"), on="battery_id"))
    t = with_limits(t, thresholds)
    rise = (pl.col("resistance_mohm") / pl.col("resistance_baseline_mohm") - 1.0) * 100.0
    warning = pl.col("resistance.warning_rise_pct")
    severity, threshold = _two_level(rise, warning, pl.col("resistance.critical_rise_pct"))
    return _conditions(
        t, "resistance_rise", value=rise, severity=severity, threshold=threshold,
        cleared=rise <= warning - pl.col("hysteresis.resistance_pct"),
        warning_hold_min=pl.col("resistance.hold_minutes"),
        critical_hold_min=pl.col("resistance.hold_minutes"))


def string_imbalance(telemetry: pl.DataFrame, thresholds: Thresholds) -> pl.DataFrame:
    """Max - min block voltage of a string at one reading time, on float: a weak, hot or
    dried-out block shows as a spread in a series string (DOMAIN §8)."""
    spread = (telemetry.filter(pl.col("mode") == "float").drop_nulls("voltage_v")
              .group_by("site_id", "string_id", "ts")
              .agg(spread=pl.col("voltage_v").max() - pl.col("voltage_v").min(),
                   blocks=pl.len())
              .filter(pl.col("blocks") >= 2))
    t = with_limits(spread, thresholds)
    value, limit_v = pl.col("spread"), pl.col("data_quality.string_imbalance_v")
    return _conditions(
        t, "string_imbalance", value=value,
        severity=pl.when(value > limit_v).then(pl.lit(WARNING)), threshold=limit_v,
        cleared=value <= limit_v - pl.col("hysteresis.voltage_v"),
        warning_hold_min=pl.col("data_quality.string_imbalance_minutes"), battery=False)


def stuck_sensor(telemetry: pl.DataFrame, thresholds: Thresholds) -> pl.DataFrame:
    """Voltage and temperature both identical to the previous reading: evidence from that
    reading on, so the hold measures how long the sensor has not changed. The first reading of
    a battery in a batch has nothing to compare with and is left out."""
    t = (telemetry.drop_nulls(["voltage_v", "temperature_c"])
         .select("site_id", "string_id", "battery_id", "ts", "voltage_v", "temperature_c")
         .sort("battery_id", "ts")
         .with_columns(pl.col("ts").shift(1).over("battery_id").alias("previous_ts"),
                       (pl.col("voltage_v") == pl.col("voltage_v").shift(1).over("battery_id"))
                       .alias("same_v"),
                       (pl.col("temperature_c")
                        == pl.col("temperature_c").shift(1).over("battery_id")).alias("same_t"))
         .drop_nulls("previous_ts"))
    t = with_limits(t, thresholds)
    unchanged = pl.col("same_v") & pl.col("same_t")
    minutes = pl.col("data_quality.stuck_sensor_minutes")
    return _conditions(
        t, "stuck_sensor", value=pl.lit(None, pl.Float64),
        severity=pl.when(unchanged).then(pl.lit(WARNING)), threshold=minutes,
        cleared=~unchanged, warning_hold_min=minutes, since="previous_ts")


def missing_readings(telemetry: pl.DataFrame, thresholds: Thresholds,
                     roster: pl.DataFrame | None = None) -> pl.DataFrame:
    """Share of a battery's expected readings missing in each whole hour of the batch (the
    hours its site reported throughout), from the site's observed tick. Batteries in `roster`
    (site_id, string_id, battery_id) count even when they sent nothing: for this rule
    silence is the evidence. Sites ticking slower than hourly cannot be judged per hour."""
    t = telemetry.select("site_id", "string_id", "battery_id", "ts").sort("battery_id", "ts")
    gap = pl.col("ts").diff().over("battery_id").dt.total_microseconds()
    ticks = (t.with_columns(gap=gap).filter(pl.col("gap") > 0).group_by("site_id")
             .agg(tick_us=pl.col("gap").median())
             .filter(pl.col("tick_us") <= HOUR_US))
    tick = pl.duration(microseconds=pl.col("tick_us").cast(pl.Int64))
    hours = (t.group_by("site_id").agg(first=pl.col("ts").min(), last=pl.col("ts").max())
             .join(ticks, on="site_id")
             .select("site_id", "tick_us", hour=pl.datetime_ranges(
                 (pl.col("first") - pl.duration(microseconds=1)).dt.truncate("1h")
                 + pl.duration(hours=1),
                 (pl.col("last") + tick - pl.duration(hours=1)).dt.truncate("1h"), "1h"))
             .explode("hour").drop_nulls("hour"))
    units = t.select(ROSTER).unique()
    if roster is not None and roster.height:
        units = pl.concat([units, roster.select(ROSTER).cast(pl.String)]).unique()
    counts = (t.group_by("battery_id", hour=pl.col("ts").dt.truncate("1h"))
              .agg(readings=pl.len()))
    grid = (units.join(hours, on="site_id")
            .join(counts, on=["battery_id", "hour"], how="left")
            .with_columns(pl.col("readings").fill_null(0),
                          ts=pl.col("hour") + pl.duration(hours=1)))
    t = with_limits(grid, thresholds)
    expected = HOUR_US / pl.col("tick_us")
    share = (1.0 - pl.col("readings") / expected).clip(0.0, 1.0) * 100.0
    limit_pct = pl.col("data_quality.missing_share_per_hour") * 100.0
    return _conditions(
        t, "missing_readings", value=share,
        severity=pl.when(share > limit_pct).then(pl.lit(WARNING)), threshold=limit_pct,
        cleared=share <= limit_pct - pl.col("hysteresis.missing_share") * 100.0,
        warning_hold_min=IMMEDIATE, since="hour")


def discharge_low_voltage(telemetry: pl.DataFrame, thresholds: Thresholds) -> pl.DataFrame:
    """A block under `discharge.warning_block_v` (1.80 V/cell) or `critical_block_v`
    (1.75 V/cell) while its string is on discharge; any other mode clears it (the discharge
    is over)."""
    t = with_limits(telemetry.drop_nulls(["voltage_v", "mode"]), thresholds)
    value, on_discharge = pl.col("voltage_v"), pl.col("mode") == "discharge"
    warning = pl.col("discharge.warning_block_v")
    severity, threshold = _two_level(value, warning, pl.col("discharge.critical_block_v"),
                                     below=True)
    return _conditions(
        t, "discharge_low_voltage", value=value,
        severity=pl.when(on_discharge).then(severity), threshold=threshold,
        cleared=~on_discharge | (value >= warning + pl.col("hysteresis.voltage_v")),
        warning_hold_min=IMMEDIATE)


def rul_risk(predictions: pl.DataFrame, thresholds: Thresholds) -> pl.DataFrame:
    """P10 of the predicted RUL under `rul.warning_days` / `rul.critical_days`, for rows with
    status ok only: a battery without a prediction has no RUL to alert on."""
    require_columns(predictions, PREDICTIONS, "predictions")
    p = (predictions.filter((pl.col("status") == "ok") & pl.col("rul_p10_days").is_not_null())
         .with_columns(as_utc(pl.col("as_of"), predictions.schema["as_of"], "predictions.as_of")
                       .alias("ts")))
    t = with_limits(p, thresholds)
    value, warning = pl.col("rul_p10_days"), pl.col("rul.warning_days")
    severity, threshold = _two_level(value, warning, pl.col("rul.critical_days"), below=True)
    return _conditions(
        t, "rul", value=value, severity=severity, threshold=threshold,
        cleared=value >= warning + pl.col("hysteresis.rul_days"), warning_hold_min=IMMEDIATE)


def telemetry_conditions(telemetry: pl.DataFrame, environment: pl.DataFrame,
                         baselines: pl.DataFrame, thresholds: Thresholds,
                         roster: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every telemetry rule over one batch, in the condition contract."""
    require_columns(telemetry, TELEMETRY, "telemetry")
    require_columns(environment, ("site_id", "ts", "room_temp_c"), "environment")
    require_columns(baselines, BASELINES, "baselines")
    if telemetry.is_empty():
        return empty_conditions()
    environment = environment.with_columns(
        as_utc(pl.col("ts"), environment.schema["ts"], "environment.ts"))
    telemetry = telemetry.with_columns(as_utc(pl.col("ts"), telemetry.schema["ts"], "telemetry.ts"))
    return pl.concat([
        float_voltage(telemetry, thresholds),
        temperature(telemetry, thresholds),
        thermal_runaway(telemetry, environment, baselines, thresholds),
        resistance_rise(telemetry, baselines, thresholds),
        string_imbalance(telemetry, thresholds),
        stuck_sensor(telemetry, thresholds),
        missing_readings(telemetry, thresholds, roster),
        discharge_low_voltage(telemetry, thresholds),
    ])
