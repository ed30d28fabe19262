"""Fleet-wide features and the labelled training set, derived from the published lake.

Unpartitioned on purpose: a model learns across sites, so these assets read every site that
has passed validation (a quarantined site keeps its last good version) and rebuild whole
tables, written atomically to `<lake>/features/`.
"""

import dagster as dg
import polars as pl

from assets.metadata import table_metadata
from assets.resources.storage import LakeStorage

SNAPSHOTS = dg.AssetKey(["features", "snapshots"])
TRAINING_SET = dg.AssetKey(["features", "training_set"])
SNAPSHOTS_FILE, TRAINING_SET_FILE = "features/snapshots", "features/training_set"
# The same snapshots built without maintenance records, what `rul predict` sees without
# --maintenance: the model is trained and calibrated for that input too (models.train)
WITHOUT_MAINTENANCE = "_without_maintenance"


def lake_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["lake", table])


@dg.asset(
    key=SNAPSHOTS,
    group_name="training",
    kinds={"parquet", "polars"},
    deps=[lake_key(t) for t in ("telemetry", "batteries", "maintenance_events")],
)
def snapshots(context: dg.AssetExecutionContext, storage: LakeStorage) -> dg.MaterializeResult:
    """Weekly point-in-time feature snapshots of every battery (`models.features`), the rows
    both training and scoring are built from, with and without the maintenance records.
    Computed one site at a time to bound memory."""
    from models.features import snapshot_features_with_and_without

    telemetry = storage.site_files("telemetry")
    if not telemetry:
        raise dg.Failure("no published telemetry in the lake: materialize the data assets first")
    batteries, maintenance = storage.read("batteries"), storage.read("maintenance_events")
    frames: dict[str, list[pl.DataFrame]] = {"": [], WITHOUT_MAINTENANCE: []}
    for path in telemetry:
        site = pl.col("site_id") == path.stem
        pair = snapshot_features_with_and_without(
            pl.scan_parquet(path), batteries.filter(site), maintenance.filter(site))
        for suffix, frame in zip(("", WITHOUT_MAINTENANCE), pair, strict=True):
            frames[suffix].append(frame)
        context.log.info(f"{path.stem}: {frames[''][-1].height:,} snapshots")
    for suffix in (WITHOUT_MAINTENANCE, ""):  # the main file last: its metadata is shown
        features = pl.concat(frames[suffix], how="diagonal_relaxed").sort("battery_id", "ts")
        written = storage.write_derived(SNAPSHOTS_FILE + suffix, features)
    return dg.MaterializeResult(metadata={
        **table_metadata(written),
        "batteries": features["battery_id"].n_unique(),
        "sites": len(telemetry),
        "sufficient_history_share": round(float(features["sufficient_history"].mean() or 0), 3),
    })


@dg.asset(
    key=TRAINING_SET,
    group_name="training",
    kinds={"parquet", "polars"},
    deps=[SNAPSHOTS, lake_key("battery_truth"), lake_key("batteries")],
)
def training_set(storage: LakeStorage) -> dg.MaterializeResult:
    """Snapshots labelled with the true RUL from the hidden `battery_truth` table (labels only:
    features never read it), with each battery's string for grouped splits; the same for the
    snapshots built without maintenance records."""
    from models.dataset import training_set as label

    truth, batteries = storage.read("battery_truth"), storage.read("batteries")
    for suffix in (WITHOUT_MAINTENANCE, ""):  # the main file last: its metadata is shown
        dataset = label(storage.read_derived(SNAPSHOTS_FILE + suffix), truth, batteries)
        if dataset.height == 0:
            raise dg.Failure("the training set is empty: no battery has enough history yet "
                             "(simulate a longer window, RUL_DAYS)")
        written = storage.write_derived(TRAINING_SET_FILE + suffix, dataset)
    rul = dataset["true_rul_days"]
    return dg.MaterializeResult(metadata={
        **table_metadata(written),
        "batteries": dataset["battery_id"].n_unique(),
        "strings": dataset["string_id"].n_unique(),
        "median_true_rul_days": float(rul.median() or 0),
        "share_rul_le_365": round(float((rul <= 365).mean() or 0), 3),
    })
