"""Generation benchmarks (issue 2, section 8). Prints rows per second and peak RSS.

    uv run python benchmarks/bench_generate.py            # both scenarios
    uv run python benchmarks/bench_generate.py fleet-1h   # one of: fleet-1h, site-60s, site-60s-short

fleet-1h   the default fleet (1,944 batteries), 730 days at 1 h: simulated, validated with the
           Great Expectations suites, and published to a Parquet lake (the Dagster path).
site-60s   216 batteries (one site) x 730 days at 60 s (~227 M telemetry rows) streamed to
           Parquet the way `rul generate` does it.
site-60s-short  the same site for 73 days: its peak RSS next to site-60s shows that memory
           does not grow with the duration.

Each scenario runs in its own process so that its peak RSS is its own.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START = dt.date(2024, 1, 1)
SCENARIOS = ("fleet-1h", "site-60s-short", "site-60s")


def run(name: str) -> dict:
    from assets.validation.checks import validate_site
    from core import lake
    from simulator.config import load_fleet
    from simulator.generate import Window, fleet_tables, simulate_site

    fleet = load_fleet()
    if name == "fleet-1h":
        window, sites, validate = Window(START, 730, 3600), fleet.sites, True
    else:
        days = 730 if name == "site-60s" else 73
        window, sites, validate = Window(START, days, 60), fleet.sites[3:4], False
    began = time.perf_counter()
    rows = 0
    with tempfile.TemporaryDirectory(prefix="rul-bench-") as out:
        out_dir = Path(out)
        lake.write_fleet(out_dir, fleet_tables(fleet))
        for site in sites:
            history = simulate_site(fleet, site.code, window, seed=42)
            staged = lake.stage_site(out_dir, history)
            if validate:
                checks = validate_site(staged, step_s=window.step_s)
                if not all(check.passed for check in checks):
                    raise SystemExit(f"{site.code}: validation failed: {checks}")
            rows += staged.files["telemetry"].rows
            lake.publish(staged)
        size_mb = sum(f.stat().st_size for f in out_dir.rglob("*.parquet")) / 1e6
    seconds = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"scenario": name, "batteries": sum(
        s.strings * s.blocks_per_string for site in sites for s in site.systems),
        "days": window.days, "step_s": window.step_s, "telemetry_rows": rows,
        "seconds": round(seconds, 1), "rows_per_s": round(rows / seconds),
        "peak_rss_mb": round(peak_mb), "parquet_mb": round(size_mb)}


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[1].startswith("--child="):
        print(json.dumps(run(argv[1].removeprefix("--child="))))
        return 0
    names = argv[1:] or list(SCENARIOS)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        print(f"unknown scenario(s): {', '.join(sorted(unknown))}; choose from {SCENARIOS}",
              file=sys.stderr)
        return 2
    header = f"{'scenario':<15} {'batteries':>9} {'days':>5} {'step':>5} {'rows':>13} " \
             f"{'seconds':>8} {'rows/s':>11} {'peak RSS':>9} {'parquet':>8}"
    print(header)
    for name in names:
        child = subprocess.run([sys.executable, __file__, f"--child={name}"],
                               check=False, capture_output=True, text=True)
        if child.returncode:
            print(child.stderr, file=sys.stderr)
            return child.returncode
        r = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{r['scenario']:<15} {r['batteries']:>9,} {r['days']:>5} {r['step_s']:>4}s "
              f"{r['telemetry_rows']:>13,} {r['seconds']:>8.1f} {r['rows_per_s']:>11,} "
              f"{r['peak_rss_mb']:>6,} MB {r['parquet_mb']:>5,} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
