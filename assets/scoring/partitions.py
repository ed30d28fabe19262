"""Hours of the simulated clock as partitions. The live simulator runs ahead of wall time by
its speed factor, so wall-clock `HourlyPartitionsDefinition` windows would not line up with
the data: keys are added as telemetry covers each simulated hour (`sensors.sim_hour_sensor`)
or, for the history, by `register_history` (one key per day is enough there: every hour of a
day carries the day's scores, models.scoring)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg

SIM_HOURS = dg.DynamicPartitionsDefinition(name="sim_hours")
KEY_FORMAT = "%Y-%m-%dT%H:00"  # UTC, e.g. 2026-01-01T05:00


def hour_key(moment: dt.datetime) -> str:
    """The key of the hour starting at or before `moment` (UTC)."""
    return moment.astimezone(dt.UTC).strftime(KEY_FORMAT)


def key_hour(key: str) -> dt.datetime:
    """The hour a key names, as an aware UTC datetime (ValueError on another format)."""
    return dt.datetime.strptime(key, KEY_FORMAT).replace(tzinfo=dt.UTC)


def hours_between(first: dt.datetime, last: dt.datetime, *, hourly: bool = True) -> list[str]:
    """Keys from `first` to `last` (both included, floored to the hour): every hour, or only
    the 00:00 of each day."""
    step = dt.timedelta(hours=1 if hourly else 24)
    moment = first.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    if not hourly:
        moment = moment.replace(hour=0)
    keys = []
    while moment <= last:
        keys.append(hour_key(moment))
        moment += step
    return keys


def history_keys(lake: Path, *, hourly: bool = False) -> list[str]:
    """Keys for the history in the lake: each day's 00:00 (or every hour) from the day after
    the first reading to the midnight after the last, the moments `rul predict` scores."""
    import polars as pl

    span = pl.scan_parquet(lake / "telemetry" / "*.parquet").select(
        first=pl.col("ts").min(), last=pl.col("ts").max()).collect()
    first, last = span.row(0)
    day = dt.timedelta(days=1)
    return hours_between(first.replace(hour=0, minute=0, second=0, microsecond=0) + day,
                         last.replace(hour=0, minute=0, second=0, microsecond=0) + day,
                         hourly=hourly)


def register_history(instance: dg.DagsterInstance, lake: Path, *, hourly: bool = False
                     ) -> list[str]:
    """Add the history's keys to `instance` (those it lacks) and return them all: then
    materialize them from the UI or `dagster asset materialize`; the scoring asset's backfill
    policy scores them in one run."""
    keys = history_keys(lake, hourly=hourly)
    known = set(instance.get_dynamic_partitions(SIM_HOURS.name))
    instance.add_dynamic_partitions(SIM_HOURS.name, [k for k in keys if k not in known])
    return keys


def main(argv: list[str] | None = None) -> int:
    """Register the history's sim_hours keys in the Dagster instance (DAGSTER_HOME).

    `python -m assets.scoring.partitions [--hourly]`, for the lake of RUL_DATA_DIR."""
    import argparse

    from core.layout import Layout
    from core.settings import Settings

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--hourly", action="store_true", help="every hour, not each 00:00")
    args = parser.parse_args(argv)
    lake = Layout(Settings.from_env().data_dir).lake_dir
    with dg.DagsterInstance.get() as instance:
        keys = register_history(instance, lake, hourly=args.hourly)
    print(f"{len(keys)} keys of {SIM_HOURS.name}: {keys[0]} .. {keys[-1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
