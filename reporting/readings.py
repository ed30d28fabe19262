"""Measurements as a monitor shows them: the newest reading of every block, a block's series
over a time range, room conditions per site. History and live files are read as Parquet, so no
reader ever holds the warehouse file's lock (the simulator, the ingest and Dagster keep
writing while any number of dashboards read).

Live tables are `lake/<table>_live/date=YYYY-MM-DD/<first ts>-<seq>.parquet` (one batch per
landed minute), the history `lake/<table>/<site>.parquet` (time-ordered row groups, so a
time filter skips most of a file)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from core.lake import table_path

NEWEST_FILES = 3  # a landed batch holds every block's readings of one minute; 3 cover a gap


def feed_scan(feed: Path | None, table: str) -> list[pl.LazyFrame]:
    """The simulator's newest tick (`live/latest/<table>.parquet`), which reaches a page a
    minute before its landed batch reaches the lake."""
    path = None if feed is None else feed / f"{table}.parquet"
    return [pl.scan_parquet(path)] if path is not None and path.exists() else []


def live_files(lake: Path, table: str, since: dt.datetime | None = None) -> list[Path]:
    """A live table's files on or after the day of `since` (all of them without it), oldest
    first."""
    days = sorted(Path(lake, f"{table}_live").glob("date=*"))
    if since is not None:
        days = [d for d in days if d.name >= f"date={since.date()}"]
    return [f for d in days for f in sorted(d.glob("*.parquet"))]


def _newest_live(lake: Path, table: str) -> list[Path]:
    days = sorted(Path(lake, f"{table}_live").glob("date=*"))
    for day in reversed(days):
        files = sorted(day.glob("*.parquet"))
        if files:
            return files[-NEWEST_FILES:]
    return []


def history_files(lake: Path, table: str, site_id: str | None = None) -> list[Path]:
    if site_id is not None:
        path = table_path(lake, table, site_id)
        return [path] if path.exists() else []
    return sorted(Path(lake, table).glob("*.parquet"))


def history_end(lake: Path) -> dt.datetime | None:
    """The last hour of the simulated history (from the environment table: small)."""
    files = history_files(lake, "environment")
    if not files:
        return None
    return pl.scan_parquet(files).select(pl.col("ts").max()).collect().item()


def newest(lake: Path, feed: Path | None = None) -> dict:
    """The newest reading's simulated time, and when (wall clock, UTC) its file was written:
    what the live/stale indicator shows. Falls back to the end of the history."""
    files = _newest_live(lake, "telemetry")
    if feed is not None and (feed / "telemetry.parquet").exists():
        files = [*files, feed / "telemetry.parquet"]
    if files:
        ts = pl.scan_parquet(files).select(pl.col("ts").max()).collect().item()
        written = dt.datetime.fromtimestamp(max(f.stat().st_mtime for f in files), dt.UTC)
        return {"ts": ts, "written_at": written, "live": True}
    return {"ts": history_end(lake), "written_at": None, "live": False}


def _last_per(frame: pl.LazyFrame, key: str) -> pl.LazyFrame:
    return frame.filter(pl.col("ts") == pl.col("ts").max().over(key))


def latest_readings(lake: Path, site_id: str | None = None,
                    feed: Path | None = None) -> pl.DataFrame:
    """Each block's newest reading: from the simulator's newest tick and the newest live
    batches, else from the last hours of the history (blocks missing from the live data keep
    their history reading)."""
    scans = feed_scan(feed, "telemetry")
    live = _newest_live(lake, "telemetry")
    if live:
        scans.append(pl.scan_parquet(live).drop("date", strict=False))
    end = history_end(lake)
    history = history_files(lake, "telemetry", site_id)
    if history and end is not None:
        scans.append(pl.scan_parquet(history).filter(pl.col("ts") >= end - dt.timedelta(hours=3)))
    if not scans:
        return pl.DataFrame()
    frame = pl.concat(scans, how="diagonal_relaxed")
    if site_id is not None:
        frame = frame.filter(pl.col("site_id") == site_id)
    return _last_per(frame, "battery_id").unique("battery_id", keep="last").collect()


def latest_environment(lake: Path, feed: Path | None = None) -> pl.DataFrame:
    """Each site's newest room and outdoor conditions, HVAC and grid state."""
    scans = feed_scan(feed, "environment") + [pl.scan_parquet(f).drop("date", strict=False)
                                              for f in _newest_live(lake, "environment")]
    end = history_end(lake)
    if end is not None:
        scans.append(pl.scan_parquet(history_files(lake, "environment"))
                     .filter(pl.col("ts") >= end - dt.timedelta(hours=3)))
    if not scans:
        return pl.DataFrame()
    frame = pl.concat(scans, how="diagonal_relaxed")
    return _last_per(frame, "site_id").unique("site_id", keep="last").collect().sort("site_id")


def environment_series(lake: Path, since: dt.datetime, site_id: str | None = None,
                       every: str = "1h") -> pl.DataFrame:
    """Room and outdoor temperature and humidity per site from `since`, averaged per `every`
    (history and live together)."""
    history = history_files(lake, "environment", site_id)
    scans = [pl.scan_parquet(history)] if history else []
    live = live_files(lake, "environment", since)
    if live:
        scans.append(pl.scan_parquet(live).drop("date", strict=False))
    if not scans:
        return pl.DataFrame()
    frame = pl.concat(scans, how="diagonal_relaxed").filter(pl.col("ts") >= since)
    if site_id is not None:
        frame = frame.filter(pl.col("site_id") == site_id)
    return (frame.sort("ts").group_by_dynamic("ts", every=every, group_by="site_id")
            .agg(pl.col("room_temp_c", "outdoor_temp_c", "humidity_pct").mean(),
                 grid_up=pl.col("grid_up").all(),
                 hvac_failed=(pl.col("hvac_state") != "normal").any())
            .collect().sort("site_id", "ts"))


def battery_series(lake: Path, site_id: str, battery_id: str, since: dt.datetime | None,
                   every: str | None = None, feed: Path | None = None) -> pl.DataFrame:
    """One block's readings from `since` (all without it), optionally averaged per `every`
    so a two-year chart stays a few thousand points."""
    history = history_files(lake, "telemetry", site_id)
    scans = feed_scan(feed, "telemetry") + ([pl.scan_parquet(history)] if history else [])
    live = live_files(lake, "telemetry", since)
    if live:
        scans.append(pl.scan_parquet(live).drop("date", strict=False))
    if not scans:
        return pl.DataFrame()
    frame = pl.concat(scans, how="diagonal_relaxed").filter(pl.col("battery_id") == battery_id)
    if since is not None:
        frame = frame.filter(pl.col("ts") >= since)
    columns = ["voltage_v", "current_a", "temperature_c", "resistance_mohm", "soc_pct"]
    frame = frame.select("ts", *columns, "mode").unique("ts", keep="first").sort("ts")
    if every is not None:
        frame = frame.group_by_dynamic("ts", every=every).agg(
            pl.col(columns).mean(), discharging=(pl.col("mode") == "discharge").any())
    else:
        frame = frame.with_columns(discharging=pl.col("mode") == "discharge").drop("mode")
    return frame.collect()


def discharge_events(lake: Path, site_id: str | None = None,
                     since: dt.datetime | None = None) -> pl.DataFrame:
    """Outage discharges (history and live), newest first."""
    scans = [pl.scan_parquet(f) for f in history_files(lake, "discharge_events", site_id)]
    scans += [pl.scan_parquet(f).drop("date", strict=False)
              for f in live_files(lake, "discharge_events", since)]
    if not scans:
        return pl.DataFrame()
    frame = pl.concat(scans, how="diagonal_relaxed")
    if site_id is not None:
        frame = frame.filter(pl.col("site_id") == site_id)
    if since is not None:
        frame = frame.filter(pl.col("end_ts") >= since)
    return frame.collect().sort("start_ts", descending=True)
