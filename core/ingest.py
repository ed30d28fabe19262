"""Ingest of the live simulator's landing files into the lake (plain functions, no Dagster).

    landing/<table>/<name>.parquet            what the simulator lands (dot-files: in flight)
    lake/<table>_live/date=YYYY-MM-DD/<name>.parquet   published, split by simulated UTC day
    lake/_ingest/<table>_live.parquet         manifest: every name ingested, with its rows
    landing/_ingested/<table>/<name>.parquet  the landing file after it was published
    landing/_quarantine/<table>/<name>.parquet + <name>.reason.json   a rejected batch

Ingest is idempotent by name: a name in the manifest is not published again, and a published
file that already exists keeps its rows, so the batch a crashed simulator lands again (same
name, same content) adds nothing, even if the crash came between publish and manifest.
Ingests hold a file lock, so two runs never race on one name or on the manifest.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from core.lake import write_frame
from core.layout import LIVE_TABLES, Layout
from core.warehouse import live_table
from simulator.atomic import atomic_path
from simulator.live_validation import KEYS, TIME_COLUMN, BatchValidation, batch_start
from simulator.live_validation import validate_batch as _validate
from simulator.schema import conform

MANIFEST = {"name": pl.String, "status": pl.String, "rows": pl.Int64, "days": pl.String,
            "newest_ts": pl.Datetime("us", "UTC"), "ingested_at": pl.Datetime("us", "UTC")}


@dataclass(frozen=True)
class LandingFile:
    table: str
    name: str  # the file name without `.parquet`
    path: Path

    @property
    def key(self) -> str:
        """How run config names it: `<table>/<name>.parquet`, relative to the landing area."""
        return f"{self.table}/{self.name}.parquet"

    @classmethod
    def of(cls, landing: Path, key: str) -> LandingFile:
        table, _, file = key.partition("/")
        if table not in LIVE_TABLES or not file.endswith(".parquet") or "/" in file:
            raise ValueError(f"{key!r}: expected '<table>/<name>.parquet' with table in "
                             f"{LIVE_TABLES}")
        return cls(table, file.removesuffix(".parquet"), landing / table / file)


@dataclass
class Outcome:
    """What ingesting one landing file did."""

    file: LandingFile
    status: str  # published | duplicate | quarantined | missing
    rows: int = 0  # rows newly published
    dropped: int = 0  # rows already in the lake (a file landed again)
    published: list[Path] = field(default_factory=list)
    newest_ts: dt.datetime | None = None
    reason: dict | None = None  # quarantined: what the reason file says
    validation: BatchValidation | None = None
    head: pl.DataFrame | None = None


def live_dir(lake: Path, table: str) -> Path:
    return lake / live_table(table)


def manifest_path(lake: Path, table: str) -> Path:
    return lake / "_ingest" / f"{live_table(table)}.parquet"


def read_manifest(lake: Path, table: str) -> pl.DataFrame:
    path = manifest_path(lake, table)
    return pl.read_parquet(path) if path.exists() else pl.DataFrame(schema=MANIFEST)


def landing_files(data_dir: Path, tables: Sequence[str] = LIVE_TABLES) -> list[LandingFile]:
    """Every complete file in the landing area (dot-files are still being written)."""
    landing = Layout(data_dir).landing_dir
    files = [LandingFile(t, p.stem, p) for t in tables for p in (landing / t).glob("*.parquet")
             if not p.name.startswith(".")]
    return sorted(files, key=lambda f: (f.name, f.table))


def pending_files(data_dir: Path, tables: Sequence[str] = LIVE_TABLES) -> list[LandingFile]:
    """Landing files whose name is not in their table's manifest yet, oldest name first."""
    lake = Layout(data_dir).lake_dir
    done = {t: set(read_manifest(lake, t)["name"].to_list()) for t in tables}
    return [f for f in landing_files(data_dir, tables) if f.name not in done[f.table]]


def validate_batch(df: pl.DataFrame, file: LandingFile) -> BatchValidation:
    """The GX suite of the file's table, with the window anchored at the time in its name."""
    return _validate(df, file.table, start=batch_start(file.name))


@contextmanager
def ingest_lock(lake: Path) -> Iterator[None]:
    """One ingest at a time across processes (released when the process dies)."""
    path = lake / "_ingest" / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ingest_files(data_dir: Path, files: Sequence[LandingFile] | None = None, *,
                 tables: Sequence[str] = LIVE_TABLES, keep_ingested: bool = True
                 ) -> list[Outcome]:
    """Ingest the given landing files (all pending ones if None), in name order, and record
    them in the manifests. Landing files already in a manifest (landed again) are retired
    too, as duplicates. Only files of `tables` are touched. `keep_ingested`: move landing
    files to `_ingested/` (else delete them)."""
    layout = Layout(data_dir)
    with ingest_lock(layout.lake_dir):
        landed = landing_files(data_dir, tables)
        todo = landed if files is None else [f for f in files if f.table in tables]
        pending = {f.key for f in pending_files(data_dir, tables)}
        todo += [f for f in landed if f.key not in pending]  # landed again
        todo = sorted({f.key: f for f in todo}.values(), key=lambda f: (f.name, f.table))
        outcomes = []
        for table in dict.fromkeys(f.table for f in todo):
            done = set(read_manifest(layout.lake_dir, table)["name"].to_list())
            batch = [_ingest(layout, f, f.name in done, keep_ingested)
                     for f in todo if f.table == table]
            _record(layout.lake_dir, table, [o for o in batch if o.status == "published"
                                             or (o.status == "duplicate" and o.file.name
                                                 not in done)])
            outcomes += batch
    return sorted(outcomes, key=lambda o: (o.file.name, o.file.table))


def _ingest(layout: Layout, file: LandingFile, done: bool, keep: bool) -> Outcome:
    if not file.path.exists():
        return Outcome(file, "missing")  # moved by an earlier run (or never landed)
    if done:
        _retire(layout, file, keep)
        return Outcome(file, "duplicate")
    try:
        df = pl.read_parquet(file.path)
    except Exception as exc:  # noqa: BLE001 - a corrupt file is a batch problem, kept
        return _quarantine(layout, file, None, [{"column": "*", "problem":
                                                 f"unreadable Parquet: {exc}", "count": 1}])
    validation = validate_batch(df, file)
    if not validation.passed:
        return _quarantine(layout, file, validation,
                           [p.as_dict() for p in validation.problems], rows=df.height)
    outcome = publish_batch(layout.lake_dir, file, conform(df, file.table))
    outcome.validation = validation
    if outcome.rows == 0 and outcome.dropped:
        outcome.status = "duplicate"  # published before, the manifest was not written
    _retire(layout, file, keep)
    return outcome


def publish_batch(lake: Path, file: LandingFile, df: pl.DataFrame) -> Outcome:
    """Write a valid batch as one file per simulated UTC day, `<table>_live/date=<day>/
    <name>.parquet`, atomically; rows whose key is already in that file are dropped."""
    table, keys, ts = file.table, list(KEYS[file.table]), TIME_COLUMN[file.table]
    outcome = Outcome(file, "published", newest_ts=df[ts].max() if df.height else None,
                      head=df.head(5))
    for (day,), part in df.with_columns(_day=pl.col(ts).dt.date()).partition_by(
            "_day", as_dict=True, maintain_order=True).items():
        target = live_dir(lake, table) / f"date={day.isoformat()}" / f"{file.name}.parquet"
        part = part.drop("_day")
        if target.exists():
            existing = pl.read_parquet(target)
            new = part.join(existing.select(keys), on=keys, how="anti")
            outcome.dropped += part.height - new.height
            if new.is_empty():
                continue
            part = pl.concat([existing, new])
            outcome.rows += new.height
        else:
            outcome.rows += part.height
        outcome.published.append(write_frame(part.sort(keys), target).path)
    return outcome


def _quarantine(layout: Layout, file: LandingFile, validation: BatchValidation | None,
                problems: list[dict], rows: int = 0) -> Outcome:
    """Move the landing file to `_quarantine/<table>/` beside a reason file naming the file,
    every failed column with its problem and row count, and the batch's size."""
    folder = layout.landing_dir / "_quarantine" / file.table
    folder.mkdir(parents=True, exist_ok=True)
    reason = {
        "file": str(file.path), "table": file.table, "name": file.name, "rows": rows,
        "problems": problems, "quarantined_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    reason_path = folder / f"{file.name}.reason.json"
    with atomic_path(reason_path) as tmp:  # reason first: a quarantined file always has one
        tmp.write_text(json.dumps(reason, indent=2), encoding="utf-8")
    os.replace(file.path, folder / f"{file.name}.parquet")
    return Outcome(file, "quarantined", reason=reason | {"reason_file": str(reason_path)},
                   validation=validation)


def _retire(layout: Layout, file: LandingFile, keep: bool) -> None:
    if keep:
        folder = layout.landing_dir / "_ingested" / file.table
        folder.mkdir(parents=True, exist_ok=True)
        os.replace(file.path, folder / file.path.name)
    else:
        file.path.unlink(missing_ok=True)


def _record(lake: Path, table: str, published: list[Outcome]) -> None:
    """Add the published names to the table's manifest (rewritten atomically)."""
    if not published:
        return
    now = dt.datetime.now(dt.UTC)
    rows = pl.DataFrame({
        "name": [o.file.name for o in published], "status": [o.status for o in published],
        "rows": [o.rows for o in published],
        "days": [",".join(p.parent.name.removeprefix("date=") for p in o.published)
                 for o in published],
        "newest_ts": [o.newest_ts for o in published], "ingested_at": [now] * len(published),
    }, schema=MANIFEST)
    manifest = pl.concat([read_manifest(lake, table), rows]).unique("name", keep="first")
    write_frame(manifest.sort("name"), manifest_path(lake, table))
