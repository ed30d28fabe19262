"""Freshness policies, as operators see them in the Dagster UI (asset health): how long each
live asset may go without a new materialization before it is late (warn) or stale (fail).
Wall-clock windows, because they watch the platform's machinery, not the simulated clock."""

from __future__ import annotations

import datetime as dt

import dagster as dg

MINUTE, HOUR = dt.timedelta(minutes=1), dt.timedelta(hours=1)
POLICIES = {
    # the simulator lands a batch a minute and the landing sensor polls every 15 s
    "lake/telemetry_live": (5 * MINUTE, 15 * MINUTE),
    "lake/environment_live": (5 * MINUTE, 15 * MINUTE),
    "lake/alerts": (5 * MINUTE, 15 * MINUTE),  # evaluated after every ingest
    # one run per simulated hour: at speed 1 (production) that is hourly
    "lake/rul_predictions": (75 * MINUTE, 3 * HOUR),
    "reports/drift": (25 * HOUR, 49 * HOUR),  # daily at 00:30 Bangkok time
}


def with_freshness(assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    def attach(spec: dg.AssetSpec) -> dg.AssetSpec:
        windows = POLICIES.get(spec.key.to_user_string())
        if windows is None:
            return spec
        warn, fail = windows
        return spec.replace_attributes(
            freshness_policy=dg.FreshnessPolicy.time_window(fail_window=fail, warn_window=warn))

    return [a.map_asset_specs(attach) if isinstance(a, dg.AssetsDefinition) else a
            for a in assets]
