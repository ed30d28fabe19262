"""The daily store (models.daily_store) and scoring's features from it (models.scoring): the
same features and statuses as `rul predict`'s path over the whole telemetry, an update after
new days equal to a rebuild, denser live sampling weighed like the hourly history, and only
the touched days recomputed. On the champion fixture's fleet (54 batteries, 450 days)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from champion import Champion, shared_champion

from models.daily_store import read_days, stored_days, update_store
from models.predict import scoring_frame
from models.scoring import features_at, features_on

END = dt.datetime(2025, 3, 26, tzinfo=dt.UTC)  # midnight after the fixture's last reading
TABLES = ("telemetry", "batteries", "maintenance_events")


def assert_frames_close(got: pl.DataFrame, want: pl.DataFrame, keys: list[str],
                        rtol: float = 1e-9, skip: tuple[str, ...] = ()) -> None:
    """Same rows, columns, types and missing values; numbers within `rtol` (float sums over
    parallel chunks differ in the last digits, and a least-squares slope's cancellation
    multiplies that by up to ~1e7, hence the looser `rtol` where slopes are compared)."""
    cols = [c for c in want.columns if c not in skip]
    got, want = got.select(cols).sort(keys), want.select(cols).sort(keys)
    assert got.height == want.height and got.schema == want.schema
    for c in cols:
        a, b = got[c], want[c]
        assert a.is_null().to_list() == b.is_null().to_list(), c
        if a.dtype.is_float():
            np.testing.assert_allclose(a.drop_nulls().to_numpy(), b.drop_nulls().to_numpy(),
                                       rtol=rtol, atol=1e-12, err_msg=c)
        else:
            assert a.to_list() == b.to_list(), c


@pytest.fixture(scope="module")
def champion(tmp_path_factory) -> Champion:
    return shared_champion(tmp_path_factory)


@pytest.fixture(scope="module")
def tables(champion) -> dict[str, pl.DataFrame]:
    return {t: pl.read_parquet(champion.lake / t / "*.parquet") for t in TABLES}


def make_lake(root: Path, tables: dict[str, pl.DataFrame], until: dt.datetime | None = None
              ) -> Path:
    """A lake with the fixture's tables, per site, the telemetry cut at `until`."""
    lake = root / "lake"
    for name, frame in tables.items():
        if name == "telemetry" and until is not None:
            frame = frame.filter(pl.col("ts") < until)
        (lake / name).mkdir(parents=True)
        for (site,), part in frame.partition_by("site_id", as_dict=True).items():
            part.write_parquet(lake / name / f"{site}.parquet")
    return lake


def publish_live(lake: Path, readings: pl.DataFrame, name: str) -> None:
    """What the ingest publishes: readings by day under telemetry_live/date=YYYY-MM-DD/."""
    for (day,), part in readings.with_columns(_d=pl.col("ts").dt.date()).partition_by(
            "_d", as_dict=True).items():
        folder = lake / "telemetry_live" / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        part.drop("_d").write_parquet(folder / f"{name}.parquet")


@pytest.fixture(scope="module")
def full_lake(tmp_path_factory, tables) -> Path:
    lake = make_lake(tmp_path_factory.mktemp("full"), tables)
    assert update_store(lake).rebuilt
    return lake


def test_store_features_equal_snapshot_features(full_lake, tables):
    """`features_at` (point windows over the store's last year) and `features_on` (rolling
    windows, one pass) give `scoring_frame`'s features and statuses on the full telemetry,
    from a fleet mostly scored to one still too young to be (under 14 days of history)."""
    moments = [END, dt.datetime(2024, 9, 1, tzinfo=dt.UTC), dt.datetime(2024, 1, 10, tzinfo=dt.UTC)]
    many = features_on(full_lake, tables["batteries"], tables["maintenance_events"],
                       [m.date() for m in moments])
    status = {}
    for as_of in moments:
        want = scoring_frame(tables["telemetry"], tables["batteries"],
                             tables["maintenance_events"], as_of)
        got = features_at(full_lake, tables["batteries"], tables["maintenance_events"], as_of)
        assert_frames_close(got, want, ["battery_id"], rtol=1e-6)
        assert_frames_close(many.filter(pl.col("ts") == as_of), want, ["battery_id"], rtol=1e-6)
        status[as_of] = got["status"]
    assert (status[END] == "ok").mean() > 0.9 and status[END].len() > 40
    assert (status[moments[-1]] == "insufficient_data").all()


@pytest.mark.parametrize("cut", [
    END - dt.timedelta(days=3),
    dt.datetime(2024, 12, 1, tzinfo=dt.UTC),  # a replacement's 90-180-day baseline window open
    dt.datetime(2024, 1, 20, tzinfo=dt.UTC),  # every first observed month still open
], ids=["end", "baseline-window", "first-month"])
def test_update_after_new_days_equals_a_rebuild(tmp_path, tables, full_lake, cut):
    """History cut, three days published live after it in two batches each: every update
    recomputes only the day it touched, and the store ends equal to the one built from the
    whole history, with the features of the full telemetry."""
    lake = make_lake(tmp_path, tables, until=cut)
    assert update_store(lake).rebuilt
    for day in range(3):
        start = cut + dt.timedelta(days=day)
        today = tables["telemetry"].filter(pl.col("ts").is_between(
            start, start + dt.timedelta(days=1), closed="left"))
        publish_live(lake, today.filter(pl.col("ts").dt.hour() < 12), "batch-1")
        first = update_store(lake)
        publish_live(lake, today.filter(pl.col("ts").dt.hour() >= 12), "batch-2")
        second = update_store(lake)
        assert not first.rebuilt and first.days == second.days == [start.date()]
    assert update_store(lake).days == []  # nothing new: nothing recomputed
    days = stored_days(lake)
    assert days == [d for d in stored_days(full_lake) if d <= days[-1]]
    assert_frames_close(read_days(lake, days[0], days[-1]), read_days(full_lake, days[0], days[-1]),
                        ["battery_id", "day"])
    as_of = cut + dt.timedelta(days=3)
    want = scoring_frame(tables["telemetry"], tables["batteries"], tables["maintenance_events"],
                         as_of)
    got = features_at(lake, tables["batteries"], tables["maintenance_events"], as_of)
    assert_frames_close(got, want, ["battery_id"], rtol=1e-6)


def test_denser_live_readings_weigh_like_hourly_ones(tmp_path, tables, full_lake):
    """Live readings every 15 minutes (each hourly reading repeated: the same physics) from a
    history that ends mid-day, plus 3 h the history already holds: the daily summaries equal
    the hourly history's, so the reading counts are time-weighted (not 4x), the hours of heat
    and the ampere-hours are right, and the repeated hours are not counted twice."""
    cut = END - dt.timedelta(days=2, hours=11)
    lake = make_lake(tmp_path, tables, until=cut)
    update_store(lake)
    later = tables["telemetry"].filter(pl.col("ts") >= cut)
    dense = pl.concat([later.with_columns(pl.col("ts") + dt.timedelta(minutes=m))
                       for m in (0, 15, 30, 45)])
    repeated = tables["telemetry"].filter(pl.col("ts").is_between(
        cut - dt.timedelta(hours=3), cut, closed="left"))
    publish_live(lake, pl.concat([dense, repeated]).sort("ts"), "dense")
    assert update_store(lake).days[0] == cut.date()  # the shared day, merged
    days = stored_days(lake)
    assert_frames_close(read_days(lake, days[0], days[-1]), read_days(full_lake, days[0], days[-1]),
                        ["battery_id", "day"], skip=("last_ts", "life_last_ts"))


def test_no_live_telemetry_yet(tmp_path, tables):
    """Before the ingest has run there is no telemetry_live folder: the store is the history's."""
    lake = make_lake(tmp_path, tables, until=END - dt.timedelta(days=400))
    first = update_store(lake)
    assert first.rebuilt and first.last_day == (END - dt.timedelta(days=401)).date()
    assert update_store(lake).days == []
    (lake / "telemetry" / "DC-CNX-01.parquet").unlink()
    again = update_store(lake)  # a site's history changed (here: withdrawn): rebuilt
    assert again.rebuilt and again.rows < first.rows
