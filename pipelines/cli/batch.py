"""Batch commands: `rul generate`, `rul pipeline`, `rul predict` and `rul sites`."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

from pipelines.cli.common import UserError


def register(commands: argparse._SubParsersAction) -> None:
    """Add the batch commands to the `rul` parser."""
    gen = commands.add_parser(
        "generate",
        help="simulate a fleet history into a Parquet lake (no Dagster)",
        description="Defaults come from RUL_FLEET_CONFIG, RUL_START, RUL_DAYS, RUL_STEP and "
        "RUL_SEED.",
    )
    gen.add_argument("--fleet", metavar="CONFIG", help="fleet TOML (default: built-in fleet)")
    gen.add_argument("--start", metavar="DATE", help="first day, e.g. 2024-01-01")
    gen.add_argument("--days", metavar="N", help="length of the history in days")
    gen.add_argument("--step", metavar="STEP", help="sampling step: 60s, 15m, 1h or 1d")
    gen.add_argument("--seed", metavar="S", help="random seed")
    gen.add_argument("--scale", metavar="K", default="1", help="repeat the fleet K times")
    gen.add_argument("--out", metavar="DIR", required=True, help="lake folder to write")
    gen.set_defaults(command=_generate)

    pipe = commands.add_parser(
        "pipeline",
        help="materialize every asset for every site once (headless Dagster)",
        description="Uses the Dagster instance in DAGSTER_HOME and the RUL_* settings.",
    )
    pipe.set_defaults(command=_pipeline)

    pred = commands.add_parser(
        "predict",
        help="predict the RUL of batteries from telemetry files (CSV or Parquet)",
        description="Scores every battery in service at --as-of with the registered model and "
        "writes battery_id, rul_p10/p50/p90_days, risk_level (from simulator/thresholds.toml, "
        "on P10), driver_1..3 and status. Batteries with too little history get status "
        "insufficient_data, those silent for a week before --as-of stale_data, and no numbers. "
        "Files are CSV or Parquet by extension; the tracking store is RUL_MLFLOW_URI.",
    )
    pred.add_argument("--telemetry", metavar="FILE", required=True,
                      help="readings with the columns of the telemetry table")
    pred.add_argument("--batteries", metavar="FILE", required=True, help="battery_id, "
                      "battery_model, rated_capacity_ah, install_date, site_id [, removed_date]")
    pred.add_argument("--maintenance", metavar="FILE", help="maintenance events (capacity tests)")
    pred.add_argument("--as-of", metavar="TS", help="score at 00:00 UTC of this day, e.g. "
                      "2025-06-01 (default: the midnight after the last reading)")
    pred.add_argument("--model", metavar="URI", default="models:/battery-rul@champion",
                      help="MLflow model URI (default: %(default)s, from RUL_MLFLOW_URI)")
    pred.add_argument("--out", metavar="FILE", required=True, help=".csv or .parquet to write")
    pred.set_defaults(command=_predict)

    sites = commands.add_parser("sites", help="inspect the configured sites")
    site_commands = sites.add_subparsers(title="commands", required=True, metavar="COMMAND")
    listing = site_commands.add_parser("list", help="list the configured sites")
    listing.add_argument("--fleet", metavar="CONFIG", help="fleet TOML (default: built-in fleet)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(command=_sites_list)



def _generate(args: argparse.Namespace) -> int:
    from core.settings import Settings, parse_date, parse_int, parse_positive, parse_step

    env = Settings.from_env()
    start = parse_date(args.start, "--start") if args.start else env.start
    days = parse_positive(args.days, "--days") if args.days else env.days
    step_s = parse_step(args.step, "--step") if args.step else env.step_s
    seed = parse_int(args.seed, "--seed") if args.seed else env.seed
    scale = parse_positive(args.scale, "--scale")

    from simulator.config import load_fleet

    fleet = load_fleet(args.fleet or env.fleet_config, scale=scale)
    out = _writable_dir(Path(args.out))

    from core import lake  # heavy imports only once the arguments are known to be good
    from simulator.generate import Window, fleet_tables, simulate_site
    from simulator.live.seed import live_seed, save_seed

    window = Window(start, days, step_s)  # parse_* already enforced Window's rules
    began = time.perf_counter()
    rows: Counter[str] = Counter()
    for table, written in lake.write_fleet(out, fleet_tables(fleet)).items():
        rows[table] += written.rows
    for site in fleet.sites:
        site_began = time.perf_counter()
        try:
            history = simulate_site(fleet, site.code, window, seed)
        except ValueError as exc:  # e.g. a window that ends before the site had batteries
            raise UserError(str(exc)) from None
        for table, written in lake.publish(lake.stage_site(out, history)).items():
            rows[table] += written.rows
        save_seed(live_seed(history), out)
        print(f"{site.code:<16} {time.perf_counter() - site_began:8.1f} s", flush=True)
    print(f"\n{'table':<20} {'rows':>14}")
    for table, count in rows.items():
        print(f"{table:<20} {count:>14,}")
    print(f"\n{len(fleet.sites)} sites, {days} days at {step_s} s steps, seed {seed}: "
          f"{time.perf_counter() - began:.1f} s -> {out}")
    return 0


def _writable_dir(path: Path) -> Path:
    probe = path / f".rul-write-probe-{os.getpid()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise UserError(f"--out: cannot write to {path}: {exc.strerror or exc}") from None
    return path.resolve()


def _pipeline(args: argparse.Namespace) -> int:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise UserError("DAGSTER_HOME is not set: run `make pipeline`, or export it as the "
                        "folder that holds dagster.yaml (the repo root)")
    from core.settings import Settings

    settings = Settings.from_env()  # absolute paths, resolved before changing folder
    from core.layout import Layout
    from core.live import reset_live
    from simulator.live.control import read_pid

    layout = Layout(settings.data_dir)
    if (pid := read_pid(layout.live_dir)) is not None:
        raise UserError(f"the live simulator is running (pid {pid}) on the current history: "
                        "`rul simulate stop` first")

    import dagster as dg

    from pipelines.definitions import build_definitions
    from pipelines.headless import run_all

    defs = build_definitions(settings)
    # dagster.yaml names its storage folders relative to DAGSTER_HOME
    with contextlib.chdir(home), dg.DagsterInstance.get() as instance:
        outcomes = run_all(defs, instance, echo=lambda line: print(line, flush=True))
    failed = [o.label for o in outcomes if o.failures]
    total = sum(o.seconds for o in outcomes)
    if failed:
        print(f"{len(failed)} of {len(outcomes)} runs failed ({', '.join(failed)}); {total:.1f} s")
        return 1
    reset_live(layout)  # a new history: the live run starts again from its end
    print(f"all {len(outcomes)} runs succeeded in {total:.1f} s; data in {settings.data_dir}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from core.settings import Settings
    from models.inputs import InputError, check_format, load_inputs, parse_as_of, write_table

    settings = Settings.from_env()
    try:
        as_of = parse_as_of(args.as_of, "--as-of") if args.as_of else None
        check_format(args.out, "--out")
        if not Path(args.out).resolve().parent.is_dir():
            raise InputError(f"--out: folder {Path(args.out).parent} does not exist")
        inputs = load_inputs(args.telemetry, args.batteries, args.maintenance)
    except InputError as exc:
        raise UserError(str(exc)) from None
    for note in inputs.notes:
        print(f"rul: {note}", file=sys.stderr)

    from models.predict import default_as_of, predict_batteries
    from models.registry import load_model

    as_of = as_of or default_as_of(inputs.telemetry)
    try:
        model = load_model(args.model, tracking_uri=settings.mlflow_uri)
    except LookupError as exc:  # nothing registered there, or not a models:/ URI
        raise UserError(f"--model: {str(exc).splitlines()[0]}; run `make pipeline` to train "
                        "and register one, or pass --model") from None
    result = predict_batteries(inputs.telemetry, inputs.batteries, inputs.maintenance, model,
                               as_of)
    write_table(result, args.out)
    status = Counter(result["status"])
    risk = Counter(result["risk_level"].drop_nulls())
    parts = [f"{status.pop('ok', 0):,} scored ("
             + ", ".join(f"{risk[k]:,} {k}" for k in ("critical", "warning", "ok")) + ")"]
    parts += [f"{n:,} {k}" for k, n in sorted(status.items())]
    skipped = inputs.batteries.height - result.height
    if skipped:
        parts.append(f"{skipped:,} not in service skipped")
    print(f"{model.name} v{model.version}, as of {as_of:%Y-%m-%d %H:%M} UTC: "
          f"{'; '.join(parts)} -> {args.out}")
    return 0


def _sites_list(args: argparse.Namespace) -> int:
    from core.settings import Settings
    from simulator.config import load_fleet

    fleet = load_fleet(args.fleet or Settings.from_env().fleet_config)
    sites = [
        {
            "site_id": site.code,
            "name": site.name,
            "region": site.region,
            "systems": len(site.systems),
            "batteries": sum(s.strings * s.blocks_per_string for s in site.systems),
        }
        for site in fleet.sites
    ]
    if args.json:
        print(json.dumps(sites, indent=2))
    else:
        for s in sites:
            print(f"{s['site_id']:<12} {s['region']:<13} {s['batteries']:>5} batteries  {s['name']}")
    return 0

