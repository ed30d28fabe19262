"""Jobs: what can be launched as a whole."""

from __future__ import annotations

import dagster as dg

materialize_all = dg.define_asset_job(
    "materialize_all",
    selection=dg.AssetSelection.all(),
    description="Fleet tables, one site's history (the run's partition) and the warehouse views. "
    "`rul pipeline` runs it for every site.",
)
