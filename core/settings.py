"""The one place that reads the environment. Everything else receives a `Settings` object, so
asset code never branches on where it runs, and tests build their own settings. Nothing is read
at import time: `Settings.from_env()` is called by the CLI and by the Definitions loader."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
_STEP = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
DEFAULT_MLFLOW_UI = "http://127.0.0.1:5000"  # what `make demo` serves


class SettingsError(ValueError):
    """A setting that cannot be used; the message is meant for the user as is."""


@dataclass(frozen=True)
class Settings:
    """Where data lives and which history to simulate. `data_dir` is the only root for paths."""

    data_dir: Path
    fleet_config: Path | None  # None: the fleet shipped with the simulator
    seed: int
    start: dt.date
    days: int
    step_s: int
    # MLflow tracking and registry store; None means SQLite under data_dir (a server URL in
    # production). Always a string once built.
    mlflow_uri: str | None = None
    mlflow_ui_url: str = DEFAULT_MLFLOW_UI  # where people open the runs (links in Dagster)
    alert_webhook_url: str | None = None  # new critical alerts are POSTed here (None: not sent)
    costs_config: Path | None = None  # replacement prices (None: models/replacement_costs.toml)
    # the first admin's password on a fresh user store (None: a one-time one is generated)
    admin_password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.mlflow_uri:
            default = sqlite_uri(self.data_dir / "mlflow" / "mlflow.db")
            object.__setattr__(self, "mlflow_uri", default)

    @property
    def mlflow_artifacts(self) -> str | None:
        """Artifact root for experiments created on a local SQLite store, beside the database;
        None for a tracking server, which decides where its artifacts go."""
        if not str(self.mlflow_uri).startswith("sqlite:"):
            return None
        return (self.data_dir / "mlflow" / "artifacts").as_uri()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        fleet = env.get("RUL_FLEET_CONFIG")
        return cls(
            data_dir=Path(env.get("RUL_DATA_DIR") or REPO_ROOT / "data").resolve(),
            fleet_config=Path(fleet).resolve() if fleet else None,
            seed=parse_int(env.get("RUL_SEED", "42"), "RUL_SEED"),
            start=parse_date(env.get("RUL_START", "2024-01-01"), "RUL_START"),
            days=parse_positive(env.get("RUL_DAYS", "730"), "RUL_DAYS"),
            step_s=parse_step(env.get("RUL_STEP", "1h"), "RUL_STEP"),
            mlflow_uri=env.get("RUL_MLFLOW_URI"),
            mlflow_ui_url=env.get("RUL_MLFLOW_UI_URL") or DEFAULT_MLFLOW_UI,
            alert_webhook_url=env.get("RUL_ALERT_WEBHOOK_URL") or None,
            costs_config=Path(env["RUL_COSTS_CONFIG"]).resolve() if env.get("RUL_COSTS_CONFIG")
            else None,
            admin_password=env.get("RUL_ADMIN_PASSWORD") or None,
        )


def sqlite_uri(path: Path) -> str:
    """MLflow's SQLite store URI for an absolute path (four slashes: `sqlite:////abs/db`)."""
    return f"sqlite:///{path.resolve()}"


def parse_int(text: str, name: str = "value") -> int:
    try:
        return int(text)
    except ValueError:
        raise SettingsError(f"{name}: expected a whole number, got {text!r}") from None


def parse_positive(text: str, name: str = "value") -> int:
    value = parse_int(text, name)
    if value < 1:
        raise SettingsError(f"{name}: must be at least 1, got {value}")
    return value


def parse_date(text: str, name: str = "date") -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise SettingsError(f"{name}: expected a date like 2024-01-01, got {text!r}") from None


def parse_step(text: str, name: str = "step") -> int:
    """Sampling step in seconds from `60s`, `15m`, `1h` or `1d`; it must divide one day."""
    match = _STEP.match(text)
    seconds = int(match[1]) * _UNIT_S[match[2]] if match else 0
    if not match or not 1 <= seconds <= 86_400 or 86_400 % seconds:
        raise SettingsError(
            f"{name}: expected a step that divides one day, like 60s, 15m, 1h or 1d; got {text!r}"
        )
    return seconds
