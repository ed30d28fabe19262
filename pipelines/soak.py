"""The soak: the live platform running together for N minutes with a simulator crash in the
middle, then an end-to-end count of what arrived.

Real parts throughout: the simulator is its own process (`rul simulate start`), killed with
SIGKILL halfway and restarted; the ingest, alert and scoring runs are the Dagster jobs that
the platform's sensors request, evaluated and executed here against a Dagster instance (a
one-process daemon); a reader thread queries the DuckDB warehouse the whole time, as the
dashboards do. It works in its own folder (`<data>/soak/`) that links the history, so it never
touches the demo's live data.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import dagster as dg
import duckdb

from core.layout import Layout
from core.live import start_detached, stop
from core.settings import Settings
from simulator.live.control import read_pid, read_status

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # runs' own log lines
HISTORY = ("sites.parquet", "systems.parquet", "strings.parquet", "environment", "telemetry",
           "batteries", "discharge_events", "discharge_curves", "maintenance_events",
           "battery_truth", "live_state")


@dataclass
class SoakReport:
    minutes: float
    tick_s: float
    speed: float
    readings_written: int = 0
    readings_in_warehouse: int = 0
    lost: int = 0
    duplicates: int = 0
    gaps_over_one_tick: int = 0
    lock_errors: int = 0
    failed_runs: list[str] = field(default_factory=list)
    alerts_opened: int = 0
    alerts_resolved: int = 0
    runs: dict[str, int] = field(default_factory=dict)
    simulator_kills: int = 0
    warehouse_reads: int = 0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicates or self.gaps_over_one_tick or self.lock_errors
                    or self.failed_runs)

    def as_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok}


def workspace(settings: Settings) -> Settings:
    """A fresh soak folder whose lake links the history (read only) of the configured one."""
    root = settings.data_dir / "soak"
    shutil.rmtree(root, ignore_errors=True)
    lake = root / "lake"
    lake.mkdir(parents=True)
    for name in HISTORY:
        source = settings.data_dir / "lake" / name
        if not source.exists():
            raise FileNotFoundError(f"{source}: no history to soak against; run `make "
                                    "pipeline` first")
        (lake / name).symlink_to(source, target_is_directory=source.is_dir())
    from dataclasses import replace

    return replace(settings, data_dir=root)


def soak(settings: Settings, minutes: float, tick_s: float = 1.0, speed: float = 60.0,
         echo: Callable[[str], None] = print) -> SoakReport:
    from pipelines.definitions import build_definitions

    mine = workspace(settings)
    layout = Layout(mine.data_dir)
    defs = build_definitions(mine)
    report = SoakReport(minutes, tick_s, speed)
    reader = _Reader(layout.warehouse_path)
    with dg.DagsterInstance.ephemeral() as instance:
        daemon = _Daemon(defs, instance, report)
        start_detached(layout, tick_s, speed, rotate_s=max(2.0, 4 * tick_s))
        reader.start()
        began, killed = time.monotonic(), False
        try:
            while time.monotonic() - began < minutes * 60:
                if not killed and time.monotonic() - began >= minutes * 30:
                    pid = read_pid(layout.live_dir)
                    os.kill(pid, signal.SIGKILL)
                    while read_pid(layout.live_dir) is not None:
                        time.sleep(0.05)
                    echo(f"simulator pid {pid} killed with SIGKILL; restarting")
                    start_detached(layout, tick_s, speed, rotate_s=max(2.0, 4 * tick_s))
                    killed, report.simulator_kills = True, 1
                daemon.tick()
                time.sleep(1.0)
        finally:
            stop(layout)
        for _ in range(3):  # drain what the last batches landed
            daemon.tick()
        report.warehouse_reads, reader_errors = reader.stop()
    _count(layout, report, tick_s * speed)
    report.lock_errors += reader_errors
    return report


class _Daemon:
    """Evaluates every running-by-default sensor and executes the runs it requests, in this
    process and in order, as a one-worker daemon would."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance,
                 report: SoakReport) -> None:
        self.defs, self.instance, self.report = defs, instance, report
        self.sensors = list(defs.sensors or [])
        self.cursors: dict[str, str | None] = {s.name: None for s in self.sensors}

    def tick(self) -> None:
        for sensor in self.sensors:
            context = dg.build_sensor_context(instance=self.instance,
                                              cursor=self.cursors[sensor.name],
                                              resources=self.defs.resources,
                                              definitions=self.defs)
            with dg.partition_loading_context(dynamic_partitions_store=self.instance):
                raw = sensor(context)  # the sensor's own function: its requests, unresolved
            result = raw if isinstance(raw, dg.SensorResult) else None
            items = (result.run_requests or []) if result else list(raw or [])
            self.cursors[sensor.name] = (result.cursor if result and result.cursor is not None
                                         else context.cursor)
            for request in (result.dynamic_partitions_requests or []) if result else []:
                if isinstance(request, dg.AddDynamicPartitionsRequest):
                    self.instance.add_dynamic_partitions(request.partitions_def_name,
                                                         list(request.partition_keys))
            for request in items:
                if isinstance(request, dg.RunRequest):
                    self._run(request.job_name or sensor.job_name, request)

    def _run(self, job_name: str, request: dg.RunRequest) -> None:
        job = self.defs.resolve_job_def(job_name)
        run_config = dict(request.run_config) | QUIET
        result = job.execute_in_process(run_config=run_config, instance=self.instance,
                                        partition_key=request.partition_key,
                                        tags=request.tags, raise_on_error=False)
        self.report.runs[job_name] = self.report.runs.get(job_name, 0) + 1
        for event in result.get_step_failure_events():
            error = event.step_failure_data.error
            while error is not None and error.cause is not None:  # the user code's own error
                error = error.cause
            message = error.message if error is not None else "failed"
            if "lock" in message.lower():
                self.report.lock_errors += 1
            self.report.failed_runs.append(f"{job_name}:{event.step_key}: "
                                           f"{message.strip().splitlines()[0]}")


class _Reader:
    """Queries the warehouse every half second from its own process, as a dashboard would; a
    read that cannot get the file within 5 s (writers hold it for milliseconds) counts as a
    lock error."""

    def __init__(self, db: Path) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.reads, self.errors = ctx.Value("i", 0), ctx.Value("i", 0)
        self._halt = ctx.Event()
        self._proc = ctx.Process(target=_read_loop, args=(str(db), self.reads, self.errors,
                                                          self._halt), daemon=True)

    def start(self) -> None:
        self._proc.start()

    def stop(self) -> tuple[int, int]:
        self._halt.set()
        self._proc.join(timeout=20)
        return self.reads.value, self.errors.value


def _read_loop(db: str, reads, errors, halt) -> None:
    while not halt.wait(0.5):
        if not Path(db).exists():
            continue
        deadline = time.monotonic() + 5.0
        while True:
            try:
                with duckdb.connect(db, read_only=True) as con:
                    views = {r[0] for r in con.execute(
                        "SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
                    if "telemetry_live" in views:
                        con.execute("SELECT count(*), max(ts) FROM telemetry_live").fetchone()
                reads.value += 1
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    errors.value += 1
                    break
                time.sleep(0.05)


def _count(layout: Layout, report: SoakReport, sim_tick_s: float) -> None:
    """Readings written (the simulator's own count) against what the warehouse holds."""
    report.readings_written = int(read_status(layout.live_dir).get("readings_written") or 0)
    live = layout.lake_dir / "telemetry_live"
    if any(live.glob("*/*.parquet")):
        glob = str(live / "*" / "*.parquet")
        with duckdb.connect() as con:
            con.execute(f"CREATE VIEW t AS SELECT battery_id, ts FROM read_parquet('{glob}')")
            report.readings_in_warehouse = con.execute("SELECT count(*) FROM t").fetchone()[0]
            report.duplicates = con.execute(
                "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) n FROM t "
                "GROUP BY battery_id, ts HAVING n > 1)").fetchone()[0]
            report.gaps_over_one_tick = con.execute(
                "SELECT count(*) FROM (SELECT ts - lag(ts) OVER (PARTITION BY battery_id "
                f"ORDER BY ts) d FROM t) WHERE d > INTERVAL {sim_tick_s + 1e-3} SECOND"
            ).fetchone()[0]
    report.lost = report.readings_written - report.readings_in_warehouse + report.duplicates
    snapshot = layout.lake_dir / "alerts.parquet"
    if snapshot.exists():
        with duckdb.connect() as con:
            opened, resolved = con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE status = 'resolved') "
                f"FROM read_parquet('{snapshot}')").fetchone()
        report.alerts_opened, report.alerts_resolved = opened, resolved

