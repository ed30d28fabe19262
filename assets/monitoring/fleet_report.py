"""The monthly fleet-health PDF (`reporting.pdf`), its job and its schedule: on the 1st of each
month at 06:00 Bangkok time, for the managers' monthly review."""

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
from pydantic import Field

from assets.resources.simulation import Simulation
from assets.resources.storage import LakeStorage
from core.layout import Layout
from core.settings import Settings
from reporting.fleet import LOCAL_TZ

FLEET_HEALTH = dg.AssetKey(["reports", "fleet_health"])


class FleetReportConfig(dg.Config):
    """Where the replacement prices come from."""

    costs_path: str | None = Field(
        default=None, description="Replacement costs TOML (see models/replacement_costs.toml); "
        "default: the shipped illustrative prices.")


def report_path(reports_dir: Path, moment: dt.datetime) -> Path:
    """`reports/fleet_health/fleet-health-YYYY-MM.pdf`, the month of `moment` in Bangkok time
    (the schedule fires at 06:00 on the 1st there, still the previous day in UTC)."""
    month = moment.astimezone(ZoneInfo(LOCAL_TZ))
    return reports_dir / "fleet_health" / f"fleet-health-{month:%Y-%m}.pdf"


@dg.asset(key=FLEET_HEALTH, group_name="monitoring", kinds={"reportlab", "pdf"})
def fleet_health_report(context: dg.AssetExecutionContext, config: FleetReportConfig,
                        storage: LakeStorage, simulation: Simulation) -> dg.MaterializeResult:
    """Monthly fleet-health PDF for managers: batteries in service, live and critical alerts,
    share healthy, RUL P10 under 90/180 days and the batteries without a usable forecast; a
    per-site table; the replacement plan with its cost per site within 90/180/365 days and the
    strings where whole-string replacement is suggested; charts of the RUL P50 distribution,
    blocks reaching end of life per month over the next 12 months (P10-P90 range) and room
    temperature by site over the last 30 days. Read from the lake, the newest RUL predictions
    and the alert store (read only). PDF at reports/fleet_health/fleet-health-YYYY-MM.pdf
    (the month of the run, Bangkok time)."""
    from reporting.fleet import FleetReader
    from reporting.pdf import fleet_report

    settings = Settings(
        data_dir=Path(storage.base_dir),
        fleet_config=Path(simulation.fleet_config) if simulation.fleet_config else None,
        seed=simulation.seed, start=dt.date.fromisoformat(simulation.start),
        days=simulation.days, step_s=simulation.step_s)
    now = dt.datetime.now(dt.UTC)
    out = report_path(Layout(settings.data_dir).reports_dir, now)
    summary = fleet_report(FleetReader(settings), out, now=now,
                           costs_path=Path(config.costs_path) if config.costs_path else None)
    context.log.info(f"{out}: {summary.pages} pages, {summary.bytes:,} bytes, "
                     f"{summary.batteries:,} batteries at {summary.sites} sites")
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(out)),
        "report_url": dg.MetadataValue.url(out.resolve().as_uri()),
        "pages": summary.pages,
        "size": summary.bytes,
        "batteries": summary.batteries,
        "sites": summary.sites,
    })


monthly_fleet_report = dg.define_asset_job(
    "monthly_fleet_report", selection=dg.AssetSelection.assets(FLEET_HEALTH),
    description="Builds the fleet-health PDF (reports/fleet_health).")

monthly_fleet_report_schedule = dg.ScheduleDefinition(
    name="monthly_fleet_report_schedule",
    job=monthly_fleet_report,
    cron_schedule="0 6 1 * *",
    execution_timezone=LOCAL_TZ,
    description="On the 1st of each month at 06:00 Bangkok time: the fleet-health PDF.",
    default_status=dg.DefaultScheduleStatus.RUNNING,  # `make demo`'s daemon runs it
)
