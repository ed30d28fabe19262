"""`FleetReader`: the one read-only door to what the platform has written (the lake's Parquet
tables, the newest RUL predictions, the alert store, the simulator's status and the model
registry), for the dashboards and the reports. It only reads: Parquet files directly (never
the DuckDB file, whose single-writer lock would block a view refresh), SQLite read-only.

Status of a battery, as the site pages show it: the worse of its RUL risk (on the P10, the
thresholds of `simulator/thresholds.toml`) and its worst live alert; `unknown` when it has
neither a usable prediction nor an alert, so no battery is called healthy on no evidence."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from core.layout import Layout
from core.settings import Settings
from reporting import alerts as alert_reads
from reporting import readings

LOCAL_TZ = "Asia/Bangkok"  # every site is in Thailand (UTC+7, no daylight saving)
LEVEL = {"healthy": 0, "warning": 1, "critical": 2}
STATUSES = ("healthy", "warning", "critical", "unknown")
PREDICTION_COLUMNS = ["battery_id", "as_of", "features_as_of", "rul_p10_days", "rul_p50_days",
                      "rul_p90_days", "risk_level", "status", "model_version",
                      "driver_1", "driver_2", "driver_3"]


def ohmic_coefficients(batteries: pl.DataFrame) -> pl.DataFrame:
    """battery_id with its model's ohmic temperature coefficient, taken as the model's features
    take it (`models.features.per_battery`, from the datasheet figures)."""
    from models.features import per_battery

    return per_battery(batteries).select("battery_id", "ohmic_temp_coeff_per_c")


def at_25c(resistance: pl.Expr) -> pl.Expr:
    """An ohmic reading corrected to 25 °C from the block's temperature, as the model's
    features correct it (`models.features.daily_aggregates`): ohmic values fall ~1 %/°C as a
    block warms, so an uncorrected reading makes a block in a hot room look healthier. Needs
    `temperature_c` and `ohmic_temp_coeff_per_c` (`ohmic_coefficients`) beside it."""
    from models.features import REFERENCE_C

    return resistance * (pl.col("ohmic_temp_coeff_per_c")
                         * (pl.col("temperature_c") - REFERENCE_C)).exp()


@dataclass(frozen=True)
class FleetReader:
    settings: Settings

    @property
    def layout(self) -> Layout:
        return Layout(self.settings.data_dir)

    @property
    def lake(self) -> Path:
        return self.layout.lake_dir

    @property
    def feed(self) -> Path:
        from simulator.live.runner import FEED

        return self.layout.live_dir / FEED

    # -- fleet tables ---------------------------------------------------------------------
    def table(self, name: str) -> pl.DataFrame:
        """A fleet table (`sites`, `systems`, `strings`) or a small site table concatenated
        (`batteries`, `maintenance_events`); empty when nothing is published yet."""
        single = self.lake / f"{name}.parquet"
        if single.exists():
            return pl.read_parquet(single)
        files = sorted((self.lake / name).glob("*.parquet"))
        return pl.read_parquet(files) if files else pl.DataFrame()

    def batteries(self) -> pl.DataFrame:
        """Blocks in service now (not removed), with their string's number and system."""
        batteries = self.table("batteries")
        if batteries.is_empty():
            return batteries
        strings = self.table("strings").select("string_id", "system_id", "string_no")
        return (batteries.filter(pl.col("removed_date").is_null())
                .join(strings, on="string_id", how="left").sort("battery_id"))

    def maintenance(self, battery_id: str) -> pl.DataFrame:
        events = self.table("maintenance_events")
        if events.is_empty():
            return events
        return events.filter((pl.col("battery_id") == battery_id)
                             | (pl.col("new_battery_id") == battery_id)).sort("ts", descending=True)

    def ohmic_baselines(self, batteries: pl.DataFrame) -> pl.DataFrame:
        """Each block's own resistance baseline at 25 °C, as the model's daily store keeps it
        (`models.daily_store`, readings corrected by `models.features`): the median 90-180
        days after install or, for a block installed before the history, over its first 30
        days on record; a window still filling is no baseline yet (as in the features)."""
        from models.daily_store import day_path, stored_days
        from models.features import BASELINE_DAYS, FIRST_DAYS

        empty = pl.DataFrame(schema={"battery_id": pl.String, "baseline_25c_mohm": pl.Float64})
        days = stored_days(self.lake)
        try:
            rows = pl.read_parquet(day_path(self.lake, days[-1]), columns=[
                "battery_id", "r_base", "r_first30", "first30_days"]) if days else empty
        except FileNotFoundError:  # the store is being rebuilt: the next refresh has it
            return empty
        if rows.is_empty():
            return empty
        settled = (pl.lit(days[-1]) - pl.col("install_date")).dt.total_days() > BASELINE_DAYS[1]
        return rows.join(batteries.select("battery_id", "install_date"), on="battery_id").select(
            "battery_id", baseline_25c_mohm=pl.coalesce(
                pl.when(settled).then("r_base"),
                pl.when(pl.col("first30_days") >= FIRST_DAYS).then("r_first30")))

    # -- predictions ----------------------------------------------------------------------
    def prediction_files(self) -> list[Path]:
        return sorted((self.lake / "rul_predictions").glob("date=*/*.parquet"))

    def latest_predictions(self) -> pl.DataFrame:
        """The newest scored hour: one row per battery in service at that hour."""
        files = self.prediction_files()
        if not files:
            return pl.DataFrame(schema={"battery_id": pl.String})
        return pl.read_parquet(files[-1], hive_partitioning=False)

    def rul_history(self, battery_id: str, days: int | None = None) -> pl.DataFrame:
        """How one battery's forecast evolved: one row per scored day (the hours of a day
        share their numbers, so the day's last hour stands for it)."""
        files = self.prediction_files()
        if days is not None and files:
            first = files[-1].parent.name.removeprefix("date=")
            cut = dt.date.fromisoformat(first) - dt.timedelta(days=days)
            files = [f for f in files if f.parent.name >= f"date={cut}"]
        if not files:
            return pl.DataFrame()
        return (pl.scan_parquet(files, hive_partitioning=False)
                .filter(pl.col("battery_id") == battery_id)
                .select("as_of", "rul_p10_days", "rul_p50_days", "rul_p90_days", "status",
                        "model_version")
                .sort("as_of").collect()
                .group_by(pl.col("as_of").dt.date().alias("day")).last().sort("day"))

    # -- measurements and alerts ----------------------------------------------------------
    def newest(self) -> dict:
        return readings.newest(self.lake, self.feed)

    def latest_readings(self, site_id: str | None = None) -> pl.DataFrame:
        return readings.latest_readings(self.lake, site_id, self.feed)

    def latest_environment(self) -> pl.DataFrame:
        return readings.latest_environment(self.lake, self.feed)

    def environment_series(self, since: dt.datetime, site_id: str | None = None,
                           every: str = "1h") -> pl.DataFrame:
        return readings.environment_series(self.lake, since, site_id, every)

    def battery_series(self, site_id: str, battery_id: str, since: dt.datetime | None,
                       every: str | None = None) -> pl.DataFrame:
        return readings.battery_series(self.lake, site_id, battery_id, since, every, self.feed)

    def discharge_events(self, site_id: str | None = None,
                         since: dt.datetime | None = None) -> pl.DataFrame:
        return readings.discharge_events(self.lake, site_id, since)

    def alerts(self, **filters) -> pl.DataFrame:
        return alert_reads.read_alerts(self.layout.alerts_db, **filters)

    def alert_events(self, alert_ids: list[int] | None = None, limit: int = 500) -> pl.DataFrame:
        return alert_reads.read_events(self.layout.alerts_db, alert_ids, limit)

    def alert_counts(self) -> dict[str, int]:
        return alert_reads.counts(self.layout.alerts_db)

    def alerts_version(self) -> int:
        return alert_reads.last_change(self.layout.alerts_db)

    # -- the joined views the pages start from -------------------------------------------
    def battery_status(self, site_id: str | None = None) -> pl.DataFrame:
        """One row per block in service: identity, newest reading, resistance against its own
        baseline (both at 25 °C), the newest RUL forecast and the status (see the module
        docstring)."""
        batteries = self.batteries()
        if batteries.is_empty():
            return batteries
        if site_id is not None:
            batteries = batteries.filter(pl.col("site_id") == site_id)
        latest = self.latest_readings(site_id)
        reading_cols = ["voltage_v", "current_a", "temperature_c", "resistance_mohm", "soc_pct",
                        "mode"]
        if latest.is_empty():
            latest = pl.DataFrame(schema={"battery_id": pl.String, "ts": pl.Datetime("us", "UTC")})
        latest = latest.select("battery_id", pl.col("ts").alias("reading_ts"),
                               *[c for c in reading_cols if c in latest.columns])
        predictions = self.latest_predictions()
        predictions = predictions.select([c for c in PREDICTION_COLUMNS if c in predictions.columns])
        predictions = predictions.rename({"status": "rul_status"}, strict=False)
        live = self.alerts(live_only=True)
        worst = (live.filter(pl.col("battery_id").is_not_null())
                 .group_by("battery_id")
                 .agg(alert_level=pl.col("severity").replace_strict(LEVEL, default=0).max(),
                      live_alerts=pl.len()))
        frame = (batteries.join(latest, on="battery_id", how="left")
                 .join(self.ohmic_baselines(batteries), on="battery_id", how="left")
                 .join(ohmic_coefficients(batteries), on="battery_id", how="left")
                 .join(predictions, on="battery_id", how="left")
                 .join(worst, on="battery_id", how="left"))
        risk = pl.col("risk_level").replace_strict(LEVEL, default=None) if "risk_level" in \
            frame.columns else pl.lit(None, pl.Int64)
        level = pl.max_horizontal(risk, pl.col("alert_level"))
        return frame.with_columns(
            live_alerts=pl.col("live_alerts").fill_null(0),
            resistance_vs_baseline_pct=(at_25c(pl.col("resistance_mohm"))
                                        / pl.col("baseline_25c_mohm") - 1) * 100
            if "resistance_mohm" in frame.columns else pl.lit(None, pl.Float64),
            status=pl.when(level.is_null()).then(pl.lit("unknown"))
            .otherwise(level.replace_strict({v: k for k, v in LEVEL.items()}, default="unknown")),
        ).sort("site_id", "string_id", "position")

    def summary(self, status: pl.DataFrame | None = None) -> dict:
        """The fleet overview's stat cards."""
        status = self.battery_status() if status is None else status
        counts = self.alert_counts()
        in_service = status.height
        p10 = status.get_column("rul_p10_days") if "rul_p10_days" in status.columns else None

        def below(days: int) -> int:
            return 0 if p10 is None else int((p10 < days).sum())

        healthy = int((status.get_column("status") == "healthy").sum()) if in_service else 0
        return {"in_service": in_service, "live_alerts": counts["live"],
                "critical_alerts": counts["critical"],
                "healthy_share": healthy / in_service if in_service else None,
                "p10_below_90": below(90), "p10_below_180": below(180),
                "scored": 0 if p10 is None else int(p10.is_not_null().sum())}

    def site_overview(self, status: pl.DataFrame | None = None) -> pl.DataFrame:
        """One row per site: name, region, blocks, live alerts, room temperature, worst RUL."""
        status = self.battery_status() if status is None else status
        sites = self.table("sites")
        if sites.is_empty():
            return sites
        per_site = status.group_by("site_id").agg(
            batteries=pl.len(),
            worst_p10_days=pl.col("rul_p10_days").min() if "rul_p10_days" in status.columns
            else pl.lit(None, pl.Float64),
            critical=(pl.col("status") == "critical").sum(),
            warning=(pl.col("status") == "warning").sum())
        live = self.alerts(live_only=True).group_by("site_id").agg(live_alerts=pl.len())
        env = self.latest_environment()
        env = env.select("site_id", "room_temp_c", "outdoor_temp_c", "humidity_pct", "hvac_state",
                         "grid_up", pl.col("ts").alias("env_ts")) if not env.is_empty() else \
            pl.DataFrame(schema={"site_id": pl.String})
        return (sites.join(per_site, on="site_id", how="left").join(live, on="site_id", how="left")
                .join(env, on="site_id", how="left")
                .with_columns(pl.col("live_alerts").fill_null(0)).sort("site_id"))

    # -- the simulator and the model ------------------------------------------------------
    def simulator(self) -> dict:
        """The simulator's own status (running, tick, clock) and its control state
        (active scenarios, offsets, the control log)."""
        from simulator.live.control import Control, read_status

        return {"status": read_status(self.layout.live_dir),
                "control": Control(self.layout.live_dir).read()}

    def drift_reports(self) -> list[Path]:
        """Drift reports (Evidently HTML), newest first."""
        return sorted((self.layout.reports_dir / "drift").glob("**/*.html"),
                      key=lambda p: p.stat().st_mtime, reverse=True)

    def model_info(self) -> dict | None:
        """The champion: version, run, metrics and the MLflow UI link; None before one is
        promoted (MLflow is imported there only: it is slow to import)."""
        from models.registry import champion_details

        return champion_details(tracking_uri=str(self.settings.mlflow_uri),
                                ui_url=self.settings.mlflow_ui_url)
