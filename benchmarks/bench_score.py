"""Hourly fleet scoring end to end: new live telemetry in -> daily store updated -> features ->
predictions -> one file per hour. Prints seconds and peak RSS.

    uv run python benchmarks/bench_score.py          # /work/devdata/lake_v1 if present, else
                                                     # RUL_DATA_DIR/lake; champion of RUL_MLFLOW_URI
    uv run python benchmarks/bench_score.py --lake DIR --skip-backfill --skip-scaled

Default fleet (targets: <= 10 s per hour). The lake's history is linked into a temporary data
dir (never written) and builds the daily store (the one-off build, timed). Live telemetry is
then published the way the ingest does (`telemetry_live/date=YYYY-MM-DD/HH.parquet`), one
reading every 5 simulated minutes: the history's last day replayed a day later, each hourly
reading repeated every 5 minutes (the live simulator is not run: for timing only the volume and
layout matter). Measured: the last hour of the first live day, the worst hour (the whole day is
summarised again and the next 00:00 is scored from a new day), through the plain functions; and
the next hour through the Dagster asset (`dg.materialize`, in process). Each measured hour runs
in a fresh process (its peak RSS is its own); model loading is printed apart (a long-lived
scorer loads it once, each Dagster run once).

Backfill: every midnight of the history scored in one run (what `BackfillPolicy.single_run`
does with daily keys): one pass over the store, then the model in chunks.

Scaled fleet (targets: <= 120 s, RSS flat in history length). The default fleet's daily store
is replicated 52x under new battery ids (101,088 batteries): simulating two years of telemetry
at that scale is not needed, the hourly path reads only the store and the new readings. The
live day is replicated likewise. Two history lengths (400 and 730 stored days) are measured,
each hour in a fresh process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from core.settings import Settings

DEV_LAKE = Path("/work/devdata/lake_v1")
HISTORY = ("telemetry", "batteries", "maintenance_events")
LIVE_STEP = dt.timedelta(minutes=5)
TARGET_S, SCALED_TARGET_S, SCALE = 10.0, 120.0, 52
LENGTHS = (400, 730)


def rss_mb() -> float:
    """Peak RSS of this process. Linux keeps `ru_maxrss` across fork+exec (a child would
    report its parent's peak), so the kernel's VmHWM of this image is read where it exists."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def link_history(src: Path, data: Path) -> Path:
    """A data dir whose lake shows `src`'s history tables (symlinks: never written)."""
    lake = data / "lake"
    lake.mkdir(parents=True)
    for table in HISTORY:
        os.symlink(src / table, lake / table)
    return lake


def live_readings(lake: Path, days_later: int, scale: int = 1) -> pl.DataFrame:
    """The history's last day, `days_later` days on, each hourly reading repeated every
    LIVE_STEP; `scale` copies under new battery ids (`-xNN`) for the scaled fleet."""
    tel = pl.scan_parquet(lake / "telemetry" / "*.parquet")
    last = tel.select(pl.col("ts").max()).collect().item()
    day = tel.filter(pl.col("ts") >= last.replace(hour=0)).collect()
    reps = int(dt.timedelta(hours=1) / LIVE_STEP)
    frame = pl.concat([day.with_columns(pl.col("ts") + dt.timedelta(days=days_later) + k * LIVE_STEP)
                       for k in range(reps)])
    return replicate(frame, scale).sort("ts") if scale > 1 else frame.sort("ts")


def replicate(frame: pl.DataFrame, scale: int) -> pl.DataFrame:
    ids = [c for c in ("battery_id", "string_id", "new_battery_id") if c in frame.columns]
    return pl.concat([frame.with_columns(pl.col(c) + f"-x{i:02d}" for c in ids)
                      for i in range(scale)])


def publish(lake: Path, readings: pl.DataFrame, hour: dt.datetime) -> int:
    """The hour's readings as the ingest publishes them (atomic rename)."""
    part = readings.filter(pl.col("ts").is_between(hour, hour + dt.timedelta(hours=1),
                                                   closed="left"))
    folder = lake / "telemetry_live" / f"date={hour:%Y-%m-%d}"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{hour:%H}.tmp"
    part.write_parquet(tmp)
    os.replace(tmp, folder / f"{hour:%H}.parquet")
    return part.height


def score_one_hour(data: Path, tracking_uri: str, hour: dt.datetime, model=None) -> dict:
    """update_store -> score_hours -> write_scores for one hour, each step timed."""
    from models.daily_store import update_store
    from models.registry import load_model
    from models.scoring import score_hours, write_scores

    lake = data / "lake"
    times = {}
    began = time.perf_counter()
    if model is None:
        model = load_model(tracking_uri=tracking_uri)
        times["model_load_s"] = time.perf_counter() - began
    start = time.perf_counter()
    batteries = pl.read_parquet(lake / "batteries" / "*.parquet")
    maintenance = pl.read_parquet(lake / "maintenance_events" / "*.parquet")
    update = update_store(lake, batteries, maintenance)
    times["update_s"] = time.perf_counter() - start
    mark = time.perf_counter()
    (scores,) = score_hours(lake, batteries, maintenance, model, [hour])
    times["score_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    write_scores(lake, scores)
    times["write_s"] = time.perf_counter() - mark
    times["hour_s"] = time.perf_counter() - start
    status = scores.predictions["status"].value_counts().sort("status").rows()
    return {**times, "batteries": scores.predictions.height, "status": status,
            "store_days": [str(d) for d in update.days], "rss_mb": rss_mb()}


def default_fleet(src: Path, tracking_uri: str, root: Path, backfill: bool) -> Path:
    from models.daily_store import update_store
    from models.registry import load_model

    data = root / "default"
    lake = link_history(src, data)
    began = time.perf_counter()
    built = update_store(lake)
    print(f"daily store built from the history: {len(built.days)} days, {built.rows:,} rows in "
          f"{time.perf_counter() - began:.1f} s, peak RSS {rss_mb():,.0f} MB", flush=True)
    began = time.perf_counter()
    model = load_model(tracking_uri=tracking_uri)
    print(f"champion v{model.version} loaded in {time.perf_counter() - began:.1f} s")
    if backfill:
        run_backfill(lake, model)
    readings = live_readings(lake, 1)
    day = readings["ts"].min().replace(hour=0, minute=0)
    for h in range(23):
        publish(lake, readings, day + dt.timedelta(hours=h))
    began = time.perf_counter()
    update_store(lake)
    print(f"first live day, hours 00-22 ({readings.height * 23 // 24:,} readings) added in "
          f"{time.perf_counter() - began:.1f} s")
    rows = publish(lake, readings, day + dt.timedelta(hours=23))
    result = child(data, tracking_uri, day + dt.timedelta(days=1))
    print(f"hour 23:00 ({rows:,} new readings) -> scored {hour_label(day, 24)} in a fresh "
          f"process: " + timings(result) + f"; model load {result['model_load_s']:.1f} s"
          + target(result["hour_s"], TARGET_S))
    nxt = live_readings(lake, 2)
    publish(lake, nxt, day + dt.timedelta(days=1))
    print("next hour through the Dagster asset (dg.materialize, in process): "
          + materialize(data, tracking_uri, day + dt.timedelta(days=1, hours=1)))
    return data


def hour_label(day: dt.datetime, hours: int) -> str:
    return f"{day + dt.timedelta(hours=hours):%Y-%m-%dT%H:00}"


def timings(r: dict) -> str:
    return (f"update {r['update_s']:.2f} s + features & predict {r['score_s']:.2f} s + write "
            f"{r['write_s']:.2f} s = {r['hour_s']:.2f} s for {r['batteries']:,} batteries "
            f"({', '.join(f'{n:,} {s}' for s, n in r['status'])}), peak RSS "
            f"{r['rss_mb']:,.0f} MB")


def target(seconds: float, limit: float) -> str:
    return f" (target <= {limit:.0f} s: {'met' if seconds <= limit else 'MISSED'})"


def materialize(data: Path, tracking_uri: str, hour: dt.datetime) -> str:
    import dagster as dg

    from assets.resources.mlflow_store import MlflowStore
    from assets.resources.storage import LakeStorage
    from assets.scoring.partitions import SIM_HOURS, hour_key
    from assets.scoring.predictions import rul_predictions

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(SIM_HOURS.name, [hour_key(hour)])
    began = time.perf_counter()
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # figures only
    result = dg.materialize([rul_predictions], instance=instance, partition_key=hour_key(hour),
                            run_config=quiet, resources={"storage": LakeStorage(base_dir=str(data)),
                                       "mlflow": MlflowStore(tracking_uri=tracking_uri,
                                                             ui_url="http://127.0.0.1:5000")})
    seconds = time.perf_counter() - began
    return (f"{hour_key(hour)} in {seconds:.2f} s (the run loads the model), success "
            f"{result.success}" + target(seconds, TARGET_S))


def run_backfill(lake: Path, model) -> None:
    from models.daily_store import stored_days
    from models.scoring import score_hours, write_scores

    days = stored_days(lake)
    hours = [dt.datetime.combine(d, dt.time(), dt.UTC) for d in days[1:]] + [
        dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time(), dt.UTC)]
    batteries = pl.read_parquet(lake / "batteries" / "*.parquet")
    maintenance = pl.read_parquet(lake / "maintenance_events" / "*.parquet")
    began = time.perf_counter()
    scores = score_hours(lake, batteries, maintenance, model, hours)
    scored = time.perf_counter() - began
    for s in scores:
        write_scores(lake, s)
    rows = sum(s.predictions.height for s in scores)
    print(f"backfill: {len(hours)} daily keys, {rows:,} prediction rows, scored in {scored:.1f} s, "
          f"written in {time.perf_counter() - began - scored:.1f} s, peak RSS {rss_mb():,.0f} MB",
          flush=True)


def scaled_store(default_lake: Path, lake: Path, days: int, source: Path | None) -> None:
    """The default fleet's store replicated SCALE times, its last `days` days (linked from
    `source`, an already scaled store, when given), with batteries, maintenance and manifest."""
    from models.daily_store import Sources, read_manifest, store_dir, stored_days, write_manifest

    store = store_dir(lake)
    (store / "days").mkdir(parents=True)
    for table in ("batteries", "maintenance_events"):
        (lake / table).mkdir()
        frame = pl.read_parquet(default_lake / table / "*.parquet")
        replicate(frame, SCALE).write_parquet(lake / table / "all.parquet")
    tests = pl.read_parquet(store_dir(default_lake) / "capacity_test_days.parquet")
    replicate(tests, SCALE).write_parquet(store / "capacity_test_days.parquet")
    for day in stored_days(default_lake)[-days:]:
        name = f"{day.isoformat()}.parquet"
        if source is not None:
            os.link(store_dir(source) / "days" / name, store / "days" / name)
        else:
            rows = pl.read_parquet(store_dir(default_lake) / "days" / name)
            replicate(rows, SCALE).write_parquet(store / "days" / name)
    manifest = read_manifest(default_lake)
    write_manifest(lake, manifest | {"fixed": Sources.of(lake).fixed, "live": {}})


def scaled_fleet(default_data: Path, tracking_uri: str, root: Path) -> None:
    default_lake = default_data / "lake"
    began = time.perf_counter()
    readings = live_readings(default_lake, 1, SCALE)
    day = readings["ts"].min().replace(hour=0, minute=0)
    lakes = {}
    for days in sorted(LENGTHS, reverse=True):
        lake = root / f"scaled_{days}" / "data" / "lake"
        scaled_store(default_lake, lake, days, lakes.get(max(LENGTHS)))
        lakes[days] = lake
    size = sum(p.stat().st_size for p in (lakes[max(LENGTHS)] / "features" / "daily" /
                                           "days").glob("*.parquet"))
    print(f"scaled fleet: {SCALE} x the default store ({size / 1e9:.1f} GB for "
          f"{max(LENGTHS)} days) and a live day of {readings.height:,} readings prepared in "
          f"{time.perf_counter() - began:.0f} s (setup, not timed below)", flush=True)
    for days in LENGTHS:
        lake = lakes[days]
        for h in range(23):
            publish(lake, readings, day + dt.timedelta(hours=h))
        warm = child(lake.parent, tracking_uri, None)
        publish(lake, readings, day + dt.timedelta(hours=23))
        result = child(lake.parent, tracking_uri, day + dt.timedelta(days=1))
        print(f"  {days} stored days: hours 00-22 added in {warm['update_s']:.1f} s (peak "
              f"{warm['rss_mb']:,.0f} MB); hour 23:00 -> {hour_label(day, 24)}: " + timings(result)
              + f"; model load {result['model_load_s']:.1f} s"
              + target(result["hour_s"], SCALED_TARGET_S), flush=True)


def child(data: Path, tracking_uri: str, hour: dt.datetime | None) -> dict:
    """Run one step in a fresh process (its own peak RSS): an update only, or a scored hour."""
    args = [sys.executable, __file__, "--child", str(data), "--tracking-uri", tracking_uri]
    if hour is not None:
        args += ["--hour", hour.isoformat()]
    done = subprocess.run(args, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_child(data: Path, tracking_uri: str, hour: str | None) -> None:
    from models.daily_store import update_store

    if hour is None:
        began = time.perf_counter()
        update_store(data / "lake")
        print(json.dumps({"update_s": time.perf_counter() - began, "rss_mb": rss_mb()}))
    else:
        print(json.dumps(score_one_hour(data, tracking_uri, dt.datetime.fromisoformat(hour))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    settings = Settings.from_env()
    parser.add_argument("--lake", type=Path,
                        default=DEV_LAKE if DEV_LAKE.is_dir() else settings.data_dir / "lake")
    parser.add_argument("--tracking-uri", default=settings.mlflow_uri)
    parser.add_argument("--skip-backfill", action="store_true")
    parser.add_argument("--skip-scaled", action="store_true")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--hour", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(args.child, args.tracking_uri, args.hour)
        return 0
    if not (args.lake / "telemetry").is_dir():
        print(f"{args.lake}: no telemetry/ folder; run `rul generate` first", file=sys.stderr)
        return 2
    print(f"history: {args.lake}; model store: {args.tracking_uri}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="rul-bench-score-"))
    try:
        data = default_fleet(args.lake, args.tracking_uri, root, not args.skip_backfill)
        if not args.skip_scaled:
            scaled_fleet(data, args.tracking_uri, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
