"""Durations and hysteresis: which condition rows open, update, escalate or resolve an alert.

Per entity and alert type, in reading order, vectorised over the whole batch:

* a severity *triggers* once it has held without a break (row after row at that level or
  worse) for its hold time, counted from the `since` of the run's first row, or from the
  pending start the store kept when the previous batch ended mid-run;
* an alert is latched from a trigger until a row that is `cleared` (back past the warning
  limit by the hysteresis margin); rows in the band in between keep it as it is, so a value
  hovering at the limit cannot flap;
* while latched, an alert takes the worst severity triggered (escalation, never back down).

Rows at or before the last reading time already seen for that entity and type are dropped, so
a re-delivered or overlapping batch changes nothing. The result is one row per alert *period*
touched (the open alert carried in, and each alert opened in the batch) plus the pending state
to keep for the next batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from alerting.conditions import ALERT_TYPES, LEVELS, entity_key
from simulator.schema import TS

KEY = ["entity", "type"]
GROUP = ["type", "site_id", "string_id", "battery_id"]  # the same groups, as the rows name them
STATE = {
    "entity": pl.String, "type": pl.String, "site_id": pl.String, "string_id": pl.String,
    "battery_id": pl.String, "last_ts": TS, "warning_since": TS, "critical_since": TS,
}
LIVE = {"entity": pl.String, "type": pl.String, "alert_id": pl.Int64, "severity": pl.String,
        "status": pl.String}


@dataclass(frozen=True)
class Tracked:
    periods: pl.DataFrame  # one row per alert opened, updated or resolved (see `_periods`)
    state: pl.DataFrame  # pending state per entity and type seen (STATE columns)


def level(severity: pl.Expr) -> pl.Expr:
    return severity.replace_strict(LEVELS, default=0, return_dtype=pl.Int8)


def _runs(frame: pl.DataFrame, name: str, lvl: int) -> pl.DataFrame:
    """Trigger of one severity: active rows whose unbroken run has lasted its hold."""
    active = pl.col("level") >= lvl
    run = (active != active.shift(1)).fill_null(True).cum_sum().over(KEY)
    frame = frame.with_columns(active.alias(f"act_{name}"), run.alias(f"run_{name}"))
    carried = pl.col(f"{name}_since")
    start = (pl.when((pl.col(f"run_{name}") == 1) & carried.is_not_null()).then(carried)
             .otherwise(pl.col("since").first().over([*KEY, f"run_{name}"])))
    held_s = (pl.col("ts") - pl.col(f"start_{name}")).dt.total_microseconds() / 1e6
    return frame.with_columns(pl.when(pl.col(f"act_{name}")).then(start).alias(f"start_{name}")
                              ).with_columns(
        (pl.col(f"act_{name}") & (held_s >= pl.col(f"{name}_hold_s").fill_null(0.0)))
        .alias(f"trig_{name}"),
        (held_s / 60.0).alias(f"held_{name}_min"))


def track(conditions: pl.DataFrame, state: pl.DataFrame, live: pl.DataFrame) -> Tracked:
    """Apply durations and hysteresis to a batch of condition rows, given the pending `state`
    and the `live` (open or acknowledged) alerts from the store."""
    groups, quiet = _triage(conditions, state, live)
    durations = [n for n, t in ALERT_TYPES.items() if t.value_is_duration]
    c = (conditions.join(groups, on=GROUP, nulls_equal=True)
         .filter(pl.col("last_ts").is_null() | (pl.col("ts") > pl.col("last_ts")))
         .sort([*KEY, "ts"])
         .unique([*KEY, "ts"], keep="first", maintain_order=True)
         .with_columns(level(pl.col("severity")).alias("level")))
    c = _runs(_runs(c, "warning", LEVELS["warning"]), "critical", LEVELS["critical"])
    init = pl.col("alert_id").is_not_null()
    trig = (pl.when(pl.col("trig_critical")).then(2).when(pl.col("trig_warning")).then(1)
            .otherwise(0).cast(pl.Int8))
    event = pl.when(pl.col("trig") > 0).then(True).when(pl.col("cleared")).then(False)
    c = c.with_columns(
        trig.alias("trig"),
        pl.when(pl.col("type").is_in(durations)).then(pl.col("held_warning_min"))
        .otherwise(pl.col("value")).alias("value"),
    ).with_columns(event.alias("event")).with_columns(
        pl.col("event").forward_fill().over(KEY).fill_null(init).alias("latch"))
    previous = pl.col("latch").shift(1).over(KEY).fill_null(init)
    c = c.with_columns((pl.col("latch") & ~previous).alias("opened"),
                       (~pl.col("latch") & previous).alias("resolved"))
    c = c.with_columns(pl.col("opened").cast(pl.Int32).cum_sum().over(KEY).alias("period"))
    return Tracked(_periods(c), pl.concat([_state(c), quiet]))


def _triage(conditions: pl.DataFrame, state: pl.DataFrame,
            live: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split the batch's entities: *busy* ones (something active, open or pending) get the
    row-by-row treatment; the rest, healthy throughout, only move their last reading time
    on. Decided per group, so the heavy work scales with the trouble, not the fleet."""
    groups = (conditions.group_by(GROUP)
              .agg(pl.col("severity").is_not_null().any().alias("active"),
                   pl.col("ts").max().alias("max_ts"))
              .with_columns(entity_key())
              .join(state.select(*KEY, "last_ts", "warning_since", "critical_since"), on=KEY,
                    how="left")
              .join(live.select(*KEY, "alert_id", level(pl.col("severity")).alias("carried")),
                    on=KEY, how="left"))
    busy = (pl.col("active") | pl.col("alert_id").is_not_null()
            | pl.col("warning_since").is_not_null() | pl.col("critical_since").is_not_null())
    quiet = (groups.filter(~busy)
             .with_columns(pl.max_horizontal("last_ts", "max_ts").alias("last_ts"))
             .select(list(STATE)).cast(STATE))
    return groups.filter(busy).drop("active", "max_ts"), quiet


def _periods(c: pl.DataFrame) -> pl.DataFrame:
    """One row per alert period: the carried-in alert (period 0, `alert_id` set) and each
    alert opened in the batch, with what to write about it."""
    seen = pl.col("latch") & (pl.col("level") > 0)
    critical = pl.col("latch") & (pl.col("trig") == 2)
    opened = pl.col("opened")
    p = (c.filter(pl.col("latch") | pl.col("resolved"))
         .group_by([*KEY, "period"], maintain_order=True)
         .agg(pl.col("site_id", "string_id", "battery_id").first(),
              pl.col("alert_id").first(),
              pl.col("carried").first(),
              pl.col("ts").filter(opened).first().alias("opened_at"),
              pl.col("trig").filter(opened).first().alias("opened_level"),
              pl.col("value").filter(opened).first().alias("opened_value"),
              pl.col("threshold").filter(opened).first().alias("opened_threshold"),
              pl.col("trig").filter(pl.col("latch")).max().alias("max_level"),
              pl.col("ts").filter(seen).last().alias("last_seen_at"),
              pl.col("value").filter(seen).last().alias("value"),
              pl.col("ts").filter(critical).first().alias("critical_at"),
              pl.col("value").filter(critical).first().alias("critical_value"),
              pl.col("threshold").filter(critical).first().alias("critical_threshold"),
              pl.col("ts").filter(pl.col("resolved")).first().alias("resolved_at"),
              pl.col("value").filter(pl.col("resolved")).first().alias("resolved_value")))
    start = pl.when(pl.col("period") == 0).then(pl.col("carried")).otherwise(
        pl.col("opened_level"))
    carried_id = pl.when(pl.col("period") == 0).then(pl.col("alert_id"))
    return (p.with_columns(start.alias("start_level"), carried_id.alias("alert_id"))
            .with_columns((pl.col("max_level").fill_null(0) > pl.col("start_level"))
                          .alias("escalated"))
            .sort([*KEY, "period"]))


def _state(c: pl.DataFrame) -> pl.DataFrame:
    """Where each entity and type stands after its last row: last reading time, and the
    start of any run still in progress (the next batch carries on counting from there)."""
    return (c.group_by(KEY)
            .agg(pl.col("site_id", "string_id", "battery_id").first(),
                 pl.col("ts").last().alias("last_ts"),
                 pl.col("start_warning").last().alias("warning_since"),
                 pl.col("start_critical").last().alias("critical_since"))
            .select(list(STATE)).cast(STATE))
