"""The thresholds in effect for each row of a batch, as columns.

A batch can span sites with their own overrides and, at a month's end, two Thai seasons; the
limits are therefore joined onto the rows (one small table per site x season) instead of
splitting the batch, so runs of readings stay whole across a season boundary.
"""

from __future__ import annotations

import polars as pl

from simulator.thresholds import LOCAL_TZ, SEASON_OF_MONTH, Thresholds

OVERRIDE_FIELDS = ("seasons", "sites")  # not limits: the layers `effective` merges


def season(ts: str = "ts") -> pl.Expr:
    """Thai season of each row, by the Bangkok calendar month of its UTC timestamp."""
    month = pl.col(ts).dt.convert_time_zone(LOCAL_TZ).dt.month()
    return month.replace_strict(SEASON_OF_MONTH, return_dtype=pl.String).alias("season")


def flat(thresholds: Thresholds) -> dict[str, float]:
    """`{"temperature.warning_c": 35.0, ...}`: every limit under its section.field name."""
    dumped = thresholds.model_dump(exclude=set(OVERRIDE_FIELDS))
    return {f"{sec}.{key}": float(v) for sec, fields in dumped.items() for key, v in fields.items()}


def with_limits(frame: pl.DataFrame, thresholds: Thresholds, ts: str = "ts") -> pl.DataFrame:
    """`frame` plus `season` and one `section.field` column per limit, as effective at each
    row's site and season."""
    framed = frame.with_columns(season(ts))
    keys = framed.select("site_id", "season").unique().sort("site_id", "season")
    names = list(flat(thresholds))
    rows = [{"site_id": site, "season": sea, **flat(thresholds.effective(site, sea))}
            for site, sea in keys.iter_rows()]
    schema = {"site_id": pl.String, "season": pl.String, **dict.fromkeys(names, pl.Float64)}
    table = pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    return framed.join(table, on=["site_id", "season"], how="left")

