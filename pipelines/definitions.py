"""The Dagster entry point (`[tool.dagster] module_name`). Definitions are built when Dagster
loads the code location, not at import, because the site partitions come from the fleet
config that the environment names."""

from __future__ import annotations

import dagster as dg

from assets.data.fleet import fleet
from assets.data.site_history import build_site_history
from assets.data.warehouse import warehouse
from assets.live import LIVE_ASSETS, LIVE_JOBS, LIVE_SENSORS
from assets.live.control import simulator_control
from assets.monitoring import MONITORING_ASSETS, MONITORING_CHECKS, MONITORING_SCHEDULES
from assets.monitoring.fleet_report import (
    fleet_health_report,
    monthly_fleet_report,
    monthly_fleet_report_schedule,
)
from assets.resources.mlflow_store import MlflowStore
from assets.resources.notifications import Notifications
from assets.resources.simulation import Simulation
from assets.resources.storage import LakeStorage
from assets.scoring import SCORING_ASSETS, SCORING_JOBS, SCORING_SENSORS
from assets.training import TRAINING_ASSETS, TRAINING_CHECKS
from core.settings import Settings
from pipelines.freshness import with_freshness
from pipelines.jobs import materialize_all
from simulator.config import load_fleet


def build_definitions(settings: Settings) -> dg.Definitions:
    config = str(settings.fleet_config) if settings.fleet_config else None
    partitions = dg.StaticPartitionsDefinition([site.code for site in load_fleet(config).sites])
    return dg.Definitions(
        assets=[fleet, build_site_history(partitions), warehouse, *TRAINING_ASSETS,
                *with_freshness([*LIVE_ASSETS, *SCORING_ASSETS, *MONITORING_ASSETS]),
                fleet_health_report],
        asset_checks=[*TRAINING_CHECKS, *MONITORING_CHECKS],
        jobs=[materialize_all, *LIVE_JOBS, *SCORING_JOBS, simulator_control, monthly_fleet_report],
        sensors=[*LIVE_SENSORS, *SCORING_SENSORS],
        schedules=[*MONITORING_SCHEDULES, monthly_fleet_report_schedule],
        resources={
            "storage": LakeStorage(base_dir=str(settings.data_dir)),
            "simulation": Simulation(
                fleet_config=config,
                seed=settings.seed,
                start=settings.start.isoformat(),
                days=settings.days,
                step_s=settings.step_s,
            ),
            "mlflow": MlflowStore(
                tracking_uri=settings.mlflow_uri,
                artifact_location=settings.mlflow_artifacts,
                ui_url=settings.mlflow_ui_url,
            ),
            "notifications": Notifications(webhook_url=settings.alert_webhook_url),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.from_env())
