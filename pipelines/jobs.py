"""Jobs: what can be launched as a whole."""

from __future__ import annotations

import dagster as dg

BATCH_GROUPS = ("data", "training")  # what `rul pipeline` builds; the live groups follow sensors

materialize_all = dg.define_asset_job(
    "materialize_all",
    selection=dg.AssetSelection.groups(*BATCH_GROUPS),
    description="The batch platform: fleet tables, one site's history (the run's partition), "
    "the warehouse views, features and the model. `rul pipeline` runs it for every site; the "
    "live groups run from their sensors and schedules.",
)
