"""`rul predict` end to end on a whole fleet. Prints seconds and peak RSS (target: <= 30 s).

    uv run python benchmarks/bench_predict.py                      # lake in RUL_DATA_DIR/lake
    uv run python benchmarks/bench_predict.py --lake /work/devdata/lake --format csv

The lake's telemetry, batteries and maintenance events are first exported to plain files (not
timed), the way a user would hand them over; then the installed `rul predict` command runs in
its own process against the registered champion (RUL_MLFLOW_URI), so the figure includes
interpreter start-up, imports, input checks, features, the model and writing the result.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from core.lake import table_glob
from core.settings import Settings

RUL = str(Path(sys.executable).with_name("rul"))
TARGET_S = 30
TABLES = {"telemetry": "telemetry", "batteries": "batteries", "maintenance": "maintenance_events"}


def export(lake: Path, folder: Path, fmt: str) -> dict[str, Path]:
    paths = {}
    for name, table in TABLES.items():
        frame = pl.scan_parquet(table_glob(lake, table))
        paths[name] = folder / f"{name}.{fmt}"
        if fmt == "csv":
            frame.sink_csv(paths[name])
        else:
            frame.sink_parquet(paths[name])
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, default=Settings.from_env().data_dir / "lake")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="rul-bench-predict-") as tmp:
        folder = Path(tmp)
        began = time.perf_counter()
        paths = export(args.lake, folder, args.format)
        rows = pl.scan_parquet(table_glob(args.lake, "telemetry")).select(pl.len()).collect().item()
        print(f"exported {rows:,} telemetry rows from {args.lake} as {args.format} in "
              f"{time.perf_counter() - began:.1f} s", flush=True)

        out = folder / "predictions.parquet"
        command = [RUL, "predict", "--telemetry", str(paths["telemetry"]),
                   "--batteries", str(paths["batteries"]),
                   "--maintenance", str(paths["maintenance"]), "--out", str(out)]
        began = time.perf_counter()
        done = subprocess.run(command, check=False, capture_output=True, text=True,
                              env=os.environ)
        seconds = time.perf_counter() - began
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        sys.stderr.write(done.stderr)
        if done.returncode:
            return done.returncode
        print(done.stdout.strip())
        result = pl.read_parquet(out)

    scored = result.filter(pl.col("status") == "ok").height
    print(f"rul predict: {result.height:,} batteries in service ({scored:,} scored) from "
          f"{rows:,} telemetry rows in {seconds:.1f} s, peak RSS {peak_mb:,.0f} MB "
          f"(target <= {TARGET_S} s: {'met' if seconds <= TARGET_S else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
