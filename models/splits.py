"""Grouped splits: never rows of one battery (or, for the test set, of one string) on both sides.

Weekly snapshots of one battery are near copies of each other, and batteries of one string
share their room, charger and discharges; a random row split would leak both (DOMAIN §6/§7).
The test set is whole strings, drawn per site so every site is represented; the rest is split
by battery into train, validation (early stopping only) and calibration (split conformal).
Everything is drawn from the seed, so a run can be repeated exactly.
"""

from __future__ import annotations

import numpy as np
import polars as pl

SPLITS = ("train", "validation", "calibration", "test")


def held_out_strings(strings: pl.DataFrame, share: float, seed: int) -> list[str]:
    """About `share` of each site's strings (at least one where a site has two or more)."""
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    per_site = strings.select("site_id", "string_id").unique().sort("site_id", "string_id")
    for (_site,), group in per_site.group_by("site_id", maintain_order=True):
        ids = group["string_id"].to_list()
        k = max(1, round(len(ids) * share)) if len(ids) > 1 and share > 0 else 0
        chosen += [ids[i] for i in sorted(rng.permutation(len(ids))[:k])]
    return sorted(chosen)


def split_batteries(
    dataset: pl.DataFrame, *, seed: int, test_string_share: float,
    validation_battery_share: float, calibration_battery_share: float,
) -> dict[str, list[str]]:
    """Battery ids per split: test = batteries of the held-out strings; the other batteries go
    to validation and calibration by the given shares and to train otherwise."""
    held_out = set(held_out_strings(dataset, test_string_share, seed))
    owners = dataset.select("battery_id", "string_id").unique().sort("battery_id")
    test = owners.filter(pl.col("string_id").is_in(held_out))["battery_id"].to_list()
    rest = owners.filter(~pl.col("string_id").is_in(held_out))["battery_id"].to_list()
    order = [rest[i] for i in np.random.default_rng(seed + 1).permutation(len(rest))]
    n_val = max(1, round(len(rest) * validation_battery_share))
    n_cal = max(1, round(len(rest) * calibration_battery_share))
    if n_val + n_cal >= len(rest):
        raise ValueError(f"{len(rest)} non-test batteries are too few for validation "
                         f"({n_val}), calibration ({n_cal}) and training")
    return {
        "train": sorted(order[n_val + n_cal:]),
        "validation": sorted(order[:n_val]),
        "calibration": sorted(order[n_val:n_val + n_cal]),
        "test": sorted(test),
    }


def battery_folds(frame: pl.DataFrame, n_folds: int, seed: int) -> list[np.ndarray]:
    """Row indices of each GroupKFold fold, grouped by battery (batteries shuffled by seed)."""
    from sklearn.model_selection import GroupKFold

    groups = frame["battery_id"].to_numpy()
    folds = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [test_idx for _, test_idx in folds.split(np.zeros(len(groups)), groups=groups)]
