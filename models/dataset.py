"""The labelled training table: point-in-time features joined with the hidden truth.

Labels come only from `battery_truth` at the snapshot's own timestamp (the simulator knows each
unit's true crossing of 80 % capacity); features come only from `snapshot_features`, which
never reads the truth. Nothing here derives a label from a feature or from the series' own
future (DOMAIN §7).
"""

from __future__ import annotations

import polars as pl

from models.features import KEYS

LABEL = "true_rul_days"
_STRING_OF_BATTERY = r"^(.*)-J\d+(?:-R\d+)?$"  # DC-BKK-01-UPS-01-S3-J07(-R1) -> ...-S3


def training_set(
    features: pl.DataFrame, truth: pl.DataFrame, strings_or_batteries: pl.DataFrame
) -> pl.DataFrame:
    """Snapshots with enough history, each with its true RUL at the same (battery_id, ts) and
    the string it sits in. Snapshots without a truth row (unit already removed) are dropped."""
    if LABEL in features.columns:
        raise ValueError(f"features already contain {LABEL!r}: labels must come from the truth")
    labels = truth.select(*KEYS, pl.col(LABEL).cast(pl.Float64)).unique(KEYS)
    return (
        features.filter(pl.col("sufficient_history"))
        .join(labels, on=KEYS, how="inner")
        .join(_string_of(features, strings_or_batteries), on="battery_id", how="left")
        .sort(KEYS)
    )


def _string_of(features: pl.DataFrame, table: pl.DataFrame) -> pl.DataFrame:
    """battery_id -> string_id from the batteries table, or, given the strings table, from the
    battery code (a block's code is its string's code plus -Jnn); unknown strings raise."""
    if "battery_id" in table.columns:
        return table.select("battery_id", "string_id").unique("battery_id")
    ids = features.select(pl.col("battery_id").unique())
    mapped = ids.with_columns(string_id=pl.col("battery_id").str.extract(_STRING_OF_BATTERY, 1))
    unknown = mapped.filter(~pl.col("string_id").is_in(table["string_id"].implode()))
    if unknown.height:
        raise ValueError(f"{unknown.height} batteries match no string in the strings table, "
                         f"e.g. {unknown['battery_id'][0]!r}")
    return mapped
