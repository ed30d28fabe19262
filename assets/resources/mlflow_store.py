"""The MLflow resource: which tracking/registry store the training assets use and where people
open its runs. Built from `core.settings`, so assets never read the environment; the
work itself is done by the plain functions in `models.registry`."""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class MlflowStore(dg.ConfigurableResource):
    """An MLflow tracking server or local SQLite store, with its model registry."""

    tracking_uri: str = Field(description="MLflow tracking and registry URI (RUL_MLFLOW_URI).")
    artifact_location: str | None = Field(
        default=None,
        description="Artifact root for a new experiment on a local store; None lets a "
        "tracking server decide.",
    )
    ui_url: str = Field(description="Base URL of the MLflow UI, for links in run metadata.")

    def run_url(self, run_id: str) -> str:
        from models.registry import run_url

        return run_url(self.ui_url, run_id, tracking_uri=self.tracking_uri)
