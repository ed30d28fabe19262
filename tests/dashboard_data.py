"""A data folder laid out like `RUL_DATA_DIR`, built for the dashboard tests with the platform's
own parts: `rul generate` on a small fleet (two sites, one with 72 blocks so tables page), the
session's trained champion (tests/champion.py) scoring its last hour, an hour of the live
simulator's fleet stepped under a thermal runaway and landed, ingested (GX checks) and judged by
the alert engine, and three users (admin, engineer, viewer)."""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import polars as pl
import tomlkit

from core import users
from core.layout import Layout
from core.settings import Settings
from simulator.config import DEFAULT_FLEET_PATH

DAYS = 45  # more than the 14 days a forecast needs
SEED = 5
# strong and unrelated to the names: the password policy refuses "admin-password-1"
PASSWORDS = {"admin": "copper lantern drifts north", "eng": "violet harbour seven kites",
             "vic": "mossy piano under glass"}
ROLES = {"admin": "admin", "eng": "engineer", "vic": "viewer"}
RUNAWAY_BATTERY_POSITION = 3  # the block of the big site's first string that runs away


@dataclass(frozen=True)
class DashboardData:
    settings: Settings
    runaway_battery: str

    @property
    def layout(self) -> Layout:
        return Layout(self.settings.data_dir)

    @property
    def env(self) -> dict[str, str]:
        s = self.settings
        return {"RUL_DATA_DIR": str(s.data_dir), "RUL_FLEET_CONFIG": str(s.fleet_config),
                "RUL_MLFLOW_URI": str(s.mlflow_uri)}


def fleet_raw() -> dict:
    """DC-BKK-01 with one system of 3 strings x 24 blocks, DC-CNX-01 with 1 x 24."""
    raw = tomllib.loads(DEFAULT_FLEET_PATH.read_text(encoding="utf-8"))
    sites = []
    for site in (s for s in raw["sites"] if s["code"] in ("DC-BKK-01", "DC-CNX-01")):
        strings = 3 if site["code"] == "DC-BKK-01" else 1
        system = site["systems"][0] | {"strings": strings, "blocks_per_string": 24}
        system["string_installed"] = system.get("string_installed", [site["commissioned"]])[:1] \
            * strings
        sites.append(site | {"systems": [system], "unit_replacements": []})
    return raw | {"sites": sites}


def build(root: Path, champion) -> DashboardData:
    from alerting.live import evaluate
    from core.ingest import ingest_files
    from models.daily_store import update_store
    from models.registry import load_model
    from models.scoring import score_hours, write_scores
    from pipelines.cli import main
    from simulator.live.runner import LiveFleet, land

    config = root / "fleet.toml"
    config.write_text(tomlkit.dumps(fleet_raw()), encoding="utf-8")
    data = root / "data"
    start = dt.date(2025, 1, 1)
    assert main(["generate", "--fleet", str(config), "--start", start.isoformat(), "--days",
                 str(DAYS), "--step", "1h", "--seed", str(SEED), "--out",
                 str(data / "lake")]) == 0
    settings = Settings(data_dir=data, fleet_config=config, seed=SEED, start=start, days=DAYS,
                        step_s=3600, mlflow_uri=champion.tracking_uri)
    layout = Layout(data)
    lake = layout.lake_dir

    batteries = pl.read_parquet(lake / "batteries" / "*.parquet")
    runaway = (batteries.filter(pl.col("removed_date").is_null()).sort("string_id", "position")
               .row(RUNAWAY_BATTERY_POSITION - 1, named=True)["battery_id"])
    fleet = LiveFleet.from_history(lake)
    control = {"scenarios": [{"name": "thermal_runaway", "target": runaway,
                              "start_s": fleet.t_s + 60.0}], "offsets": {}}
    frames: dict[str, list[pl.DataFrame]] = {}
    for _ in range(60):  # an hour of one-minute ticks
        for table, frame in fleet.step(fleet.next_time(60.0), control).items():
            frames.setdefault(table, []).append(frame)
    batch = {t: pl.concat(f) for t, f in frames.items() if f}
    land(batch, f"{batch['telemetry']['ts'].min():%Y%m%dT%H%M%SZ}-000000", layout.landing_dir)
    fleet.counters.seq += 1
    fleet.save(layout.live_dir / "checkpoint.pkl")  # a simulator started later goes on from here
    ingest_files(data)
    evaluate(layout)

    maintenance = pl.read_parquet(lake / "maintenance_events" / "*.parquet")
    update_store(lake, batteries, maintenance)
    model = load_model(tracking_uri=champion.tracking_uri)
    end = batch["telemetry"]["ts"].max().replace(minute=0, second=0, microsecond=0)
    for scores in score_hours(lake, batteries, maintenance, model,
                              [end - dt.timedelta(days=1), end]):
        write_scores(lake, scores)
    evaluate(layout, telemetry=False)
    for name, password in PASSWORDS.items():
        users.add_user(layout.users_db, name, ROLES[name], password, by="test fixture")
    return DashboardData(settings, runaway)


@cache
def _dashboard_in(root: Path, champion) -> DashboardData:
    root.mkdir(parents=True)
    return build(root, champion)


def shared_dashboard(tmp_path_factory) -> DashboardData:
    """The session's one dashboard data folder (~15 s to build on top of the champion)."""
    from champion import shared_champion

    return _dashboard_in(tmp_path_factory.getbasetemp() / "dashboard", shared_champion(
        tmp_path_factory))


def clone(data: DashboardData, root: Path) -> DashboardData:
    """A private copy for a test that changes things (alerts, users, scenarios)."""
    import shutil

    target = root / "data"
    shutil.copytree(data.settings.data_dir, target, symlinks=True)
    return DashboardData(replace(data.settings, data_dir=target), data.runaway_battery)
