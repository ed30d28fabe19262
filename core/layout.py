"""Where everything lives under the one data root (`Settings.data_dir`, RUL_DATA_DIR). Every
entry point and library builds its paths here, so a deployment moves the whole platform by
changing one setting.

    lake/                   published Parquet (history per site, live tables by day, predictions)
    warehouse.duckdb        DuckDB views over the lake (views only: the write lock is brief)
    landing/<table>/        what the live simulator appends: one file per table and rotation
    live/                   the live simulator's checkpoint, control file, status and log
    alerts/alerts.sqlite    the alert store (SQLite, WAL): the engine and users both write it
    auth/                   private (0o700): users.sqlite (dashboard users, roles, audit),
                            cookie_secret (signs the dashboards' login cookies, 0o600) and
                            jupyter_token (the demo's JupyterLab token, 0o600)
    jupyter/                the demo's JupyterLab user config dir (settings, workspaces)
    reports/                generated reports (Evidently drift HTML, ...)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LIVE_TABLES = ("telemetry", "environment", "discharge_events")  # what the simulator lands


@dataclass(frozen=True)
class Layout:
    data_dir: Path

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def live_dir(self) -> Path:
        return self.data_dir / "live"

    @property
    def alerts_db(self) -> Path:
        return self.data_dir / "alerts" / "alerts.sqlite"

    @property
    def auth_dir(self) -> Path:
        return self.data_dir / "auth"

    @property
    def users_db(self) -> Path:
        return self.auth_dir / "users.sqlite"

    @property
    def cookie_secret_path(self) -> Path:
        return self.auth_dir / "cookie_secret"

    @property
    def jupyter_token_path(self) -> Path:
        return self.auth_dir / "jupyter_token"

    @property
    def jupyter_dir(self) -> Path:
        return self.data_dir / "jupyter"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"
