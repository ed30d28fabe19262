"""The daily store: per-battery daily rows of history and live telemetry (models.daily_rows),
kept in the lake and extended only for the days new telemetry touches, so hourly scoring
never re-reads the two-year history.

    <lake>/features/daily/days/YYYY-MM-DD.parquet     one row per battery with telemetry that day
    <lake>/features/daily/capacity_test_days.parquet  30-day resistance on capacity-test days
    <lake>/features/daily/_manifest.json              what the rows were built from

Sources: the history `<lake>/telemetry/<site>.parquet` and the live readings
`<lake>/telemetry_live/date=YYYY-MM-DD/*.parquet` (absent until the ingest has run). A live
day whose file listing changed is recomputed with every later day; a changed history,
batteries or maintenance table (a re-simulated site) rebuilds the store. Each day file is
replaced atomically and the manifest is written last, so an interrupted update is redone by
the next one. One writer at a time: the scoring assets run in one Dagster pool.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from models.daily_features import DAY, KEY
from models.daily_rows import (
    CLEAN_CONTEXT_DAYS,
    CONTEXT,
    CONTEXT_DAYS,
    RAW,
    capacity_test_days,
    combine,
    recompute,
    summarise,
)
from models.features import BASELINE_DAYS, infer_step_s, per_battery
from simulator.atomic import atomic_path

VERSION = 1  # bump when a row's definition changes: the next update rebuilds the store


def store_dir(lake: Path) -> Path:
    return lake / "features" / "daily"


def day_path(lake: Path, day: dt.date) -> Path:
    return store_dir(lake) / "days" / f"{day.isoformat()}.parquet"


def stored_days(lake: Path) -> list[dt.date]:
    return sorted(dt.date.fromisoformat(p.stem) for p in (store_dir(lake) / "days").glob(
        "*.parquet"))


def scan_days(lake: Path, first: dt.date, last: dt.date) -> pl.LazyFrame | None:
    """The stored rows of the days first..last (inclusive), lazily; only those days' files
    are opened. None when the store has none of them."""
    paths = [day_path(lake, d) for d in stored_days(lake) if first <= d <= last]
    return pl.scan_parquet(paths) if paths else None


def read_days(lake: Path, first: dt.date, last: dt.date, columns: list[str] | None = None,
              ids: pl.Series | None = None) -> pl.DataFrame:
    """Stored rows of the days first..last (inclusive), optionally only some columns or
    batteries."""
    scan = scan_days(lake, first, last)
    if scan is None:
        return pl.DataFrame()
    if ids is not None:
        scan = scan.filter(pl.col(KEY).is_in(ids.implode()))
    return (scan.select(columns) if columns else scan).collect()


def latest_before(lake: Path, day: dt.date, ids: pl.Series) -> pl.DataFrame:
    """Each listed battery's last stored row before `day` (a scan of the older files, for the
    rare battery silent for longer than a window)."""
    rows = read_days(lake, dt.date.min, day - dt.timedelta(days=1), ids=ids)
    return rows.sort(DAY).group_by(KEY).last() if rows.height else rows


@dataclass
class Sources:
    """The telemetry the store is built from, with fingerprints to notice changes."""

    history: list[Path]
    live: dict[str, list[Path]] = field(default_factory=dict)  # ISO day -> its files
    fixed: dict[str, list[int]] = field(default_factory=dict)  # history tables' fingerprints

    @classmethod
    def of(cls, lake: Path) -> Sources:
        history = sorted((lake / "telemetry").glob("*.parquet"))
        fixed = {str(p.relative_to(lake)): [p.stat().st_size, p.stat().st_mtime_ns]
                 for t in ("telemetry", "batteries", "maintenance_events")
                 for p in sorted((lake / t).glob("*.parquet"))}
        live = {d.name.removeprefix("date="): sorted(d.glob("*.parquet"))
                for d in live_day_dirs(lake)}
        return cls(history, live, fixed)

    def live_listing(self) -> dict[str, dict[str, list[int]]]:
        """Per live day, its files' sizes and times: a changed listing is a touched day."""
        return {day: {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in paths}
                for day, paths in self.live.items()}


def write_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Write beside `path`, then rename over it: readers see the old file or the new one."""
    with atomic_path(path) as tmp:
        frame.write_parquet(tmp, compression="zstd")


def read_manifest(lake: Path) -> dict:
    path = store_dir(lake) / "_manifest.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def write_manifest(lake: Path, manifest: dict) -> None:
    path = store_dir(lake) / "_manifest.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")


def summarise_sources(sources: Sources, per_bat: pl.DataFrame, live_days: list[str],
                      history_end: dict[str, str], days: set[dt.date] | None = None
                      ) -> list[pl.DataFrame]:
    """Summaries of the history files (only `days`, if given) and of the listed live days,
    each at its own step; live readings at or before the history's end of their site are
    left out."""
    parts = []
    for path in sources.history:
        scan = pl.scan_parquet(path)
        if days is not None:
            scan = scan.filter(pl.col("ts").dt.date().is_in(sorted(days)))
        parts.append(summarise(scan, infer_step_s(pl.scan_parquet(path)), per_bat))
    end = {k: dt.datetime.fromisoformat(v) for k, v in history_end.items()}
    for day in live_days:
        scan = pl.scan_parquet(sources.live[day])
        if end:
            cut = pl.col("site_id").replace_strict(end, default=None,
                                                   return_dtype=pl.Datetime("us", "UTC"))
            scan = scan.filter(cut.is_null() | (pl.col("ts") > cut))
        parts.append(summarise(scan, infer_step_s(scan), per_bat))
    return parts


@dataclass
class StoreUpdate:
    """What an update did: rebuilt everything or recomputed `days` (oldest first)."""

    rebuilt: bool
    days: list[dt.date]
    rows: int

    @property
    def last_day(self) -> dt.date | None:
        return self.days[-1] if self.days else None


def update_store(lake: Path, batteries: pl.DataFrame | None = None,
                 maintenance: pl.DataFrame | None = None) -> StoreUpdate:
    """Bring the store up to date with the lake's telemetry: rebuild it when the history (or
    the batteries or maintenance tables) changed, else recompute only from the first live
    day whose files changed."""
    lake = Path(lake)
    batteries = pl.read_parquet(lake / "batteries" / "*.parquet") if batteries is None \
        else batteries
    maintenance = (pl.read_parquet(lake / "maintenance_events" / "*.parquet")
                   if maintenance is None else maintenance)
    sources, manifest = Sources.of(lake), read_manifest(lake)
    if (manifest.get("version") != VERSION or manifest.get("fixed") != sources.fixed
            or not stored_days(lake)):
        return _rebuild(lake, sources, batteries, maintenance)
    listing, seen = sources.live_listing(), manifest.get("live", {})
    touched = sorted(d for d in {*listing, *seen} if listing.get(d) != seen.get(d))
    if not touched:
        return StoreUpdate(False, [], 0)
    touched_days = [dt.date.fromisoformat(d) for d in touched]
    start = touched_days[0]
    history_last = dt.date.fromisoformat(manifest["history_last_day"])
    on_history = {d for d in touched_days if d <= history_last}  # a day the history shares
    per_bat = per_battery(batteries)
    parts = summarise_sources(Sources(sources.history if on_history else [], sources.live),
                              per_bat, [d for d in touched if d in listing],
                              manifest["history_end"], on_history or None)
    last = max(stored_days(lake)[-1], touched_days[-1])
    later = read_days(lake, start, last, [KEY, DAY, *RAW])
    if later.height:  # untouched later days: their summaries are kept, their rows redone
        later = later.filter(~pl.col(DAY).dt.date().is_in(touched_days))
    raw = combine([*parts, later])
    if raw.is_empty():  # the touched days lost their files: nothing stored from them on
        for stale in (d for d in stored_days(lake) if d >= start):
            day_path(lake, stale).unlink()
        write_manifest(lake, manifest | {"live": listing})
        return StoreUpdate(False, touched_days, 0)
    context, carry = _context(lake, start, raw, batteries)
    rows, grid = recompute(raw, context, carry, batteries)
    _write_days(lake, rows, start, last)
    tests = capacity_test_days(grid.filter(pl.col(DAY).dt.date() >= start), maintenance,
                               batteries)
    if tests.height:
        kept = pl.read_parquet(store_dir(lake) / "capacity_test_days.parquet")
        write_atomic(pl.concat([kept.filter(pl.col(DAY).dt.date() < start), tests]),
                     store_dir(lake) / "capacity_test_days.parquet")
    write_manifest(lake, manifest | {"live": listing})
    return StoreUpdate(False, sorted({*rows[DAY].dt.date(), *touched_days}), rows.height)


def _context(lake: Path, start: dt.date, raw: pl.DataFrame, batteries: pl.DataFrame
             ) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """What recomputing from `start` reads of the stored days before it: the ohmic columns of
    the last CLEAN_CONTEXT_DAYS (CONTEXT_DAYS for a battery whose baseline window is still
    open), and each battery's last stored row (the carry)."""
    day = dt.timedelta(days=1)
    near = read_days(lake, start - CLEAN_CONTEXT_DAYS * day, start - day, CONTEXT)
    young = batteries.filter(pl.col("install_date") >= start - BASELINE_DAYS[1] * day)[KEY]
    far = read_days(lake, start - CONTEXT_DAYS * day, start - (CLEAN_CONTEXT_DAYS + 1) * day,
                    CONTEXT, ids=young) if young.len() else pl.DataFrame()
    context = pl.concat([far, near]) if far.height else near
    carry = rows_at(lake, near.group_by(KEY).agg(pl.col(DAY).max())) if near.height else None
    missing = raw[KEY].unique() if carry is None else raw.join(carry, on=KEY, how="anti")[
        KEY].unique()
    if missing.len():  # silent for longer than the context: their last row, from older files
        older = latest_before(lake, start - CLEAN_CONTEXT_DAYS * day, missing)
        if older.height:
            carry = older if carry is None else pl.concat([carry, older.select(carry.columns)])
    return context, carry


def rows_at(lake: Path, days: pl.DataFrame) -> pl.DataFrame:
    """The stored rows of (battery_id, day) pairs, reading one day file per distinct day."""
    parts = [read_days(lake, d.date(), d.date(), ids=ids[KEY])
             for (d,), ids in days.partition_by(DAY, as_dict=True).items()]
    return pl.concat(parts, how="vertical_relaxed").join(days, on=[KEY, DAY])


def _rebuild(lake: Path, sources: Sources, batteries: pl.DataFrame,
             maintenance: pl.DataFrame) -> StoreUpdate:
    """The whole store from the history and every live day, in one pass per source."""
    per_bat = per_battery(batteries)
    history = summarise_sources(sources, per_bat, [], {})
    sites = batteries.select(KEY, "site_id")
    ends = (pl.concat([h.select(KEY, "last_ts") for h in history]).join(sites, on=KEY)
            .group_by("site_id").agg(pl.col("last_ts").max()) if history else pl.DataFrame())
    history_end = {s: t.isoformat() for s, t in ends.iter_rows()} if ends.height else {}
    live = summarise_sources(Sources([], sources.live), per_bat, sorted(sources.live),
                             history_end)
    raw = combine([*history, *live])
    if raw.is_empty():
        raise LookupError(f"no telemetry under {lake}: nothing to summarise")
    rows, grid = recompute(raw, None, None, batteries)
    first, last = rows[DAY].min().date(), rows[DAY].max().date()
    for stale in stored_days(lake):
        if not first <= stale <= last:
            day_path(lake, stale).unlink(missing_ok=True)
    _write_days(lake, rows, first, last)
    write_atomic(capacity_test_days(grid, maintenance, batteries),
                 store_dir(lake) / "capacity_test_days.parquet")
    history_last = ends["last_ts"].max() if ends.height else rows[DAY].min()
    write_manifest(lake, {"version": VERSION, "fixed": sources.fixed,
                          "live": sources.live_listing(), "history_end": history_end,
                          "history_last_day": history_last.date().isoformat()})
    return StoreUpdate(True, sorted(set(rows[DAY].dt.date())), rows.height)


def _write_days(lake: Path, rows: pl.DataFrame, first: dt.date, last: dt.date) -> None:
    """Replace the day files first..last with `rows` (a day left without rows loses its
    file)."""
    by_day = {key[0].date(): part for key, part in rows.sort(KEY).partition_by(
        DAY, as_dict=True, maintain_order=True).items()}
    day = first
    while day <= last:
        if day in by_day:
            write_atomic(by_day[day], day_path(lake, day))
        else:
            day_path(lake, day).unlink(missing_ok=True)
        day += dt.timedelta(days=1)


def live_day_dirs(lake: Path) -> list[Path]:
    """The live day folders that hold files, oldest first (ISO names sort by date)."""
    return [d for d in sorted(Path(lake, "telemetry_live").glob("date=*"))
            if d.is_dir() and any(d.glob("*.parquet"))]


def newest_live_ts(lake: Path, files: int = 4) -> dt.datetime | None:
    """The newest live reading, from the newest few files of the newest day only (a sensor
    asks every tick); None before the ingest has published anything."""
    days = live_day_dirs(lake)
    if not days:
        return None
    newest = sorted(days[-1].glob("*.parquet"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    return pl.scan_parquet(newest[-files:]).select(pl.col("ts").max()).collect().item()


def first_live_ts(lake: Path) -> dt.datetime | None:
    """The first live reading (from the oldest day's files)."""
    days = live_day_dirs(lake)
    if not days:
        return None
    return pl.scan_parquet(sorted(days[0].glob("*.parquet"))).select(
        pl.col("ts").min()).collect().item()
