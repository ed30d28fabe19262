"""The one threshold config (alert limits, RUL risk levels), read by every layer."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_THRESHOLDS_PATH = Path(__file__).with_name("thresholds.toml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FloatVoltage(_Section):
    low_v: float = Field(gt=0)
    high_v: float = Field(gt=0)
    compensation_v_per_c: float


class Temperature(_Section):
    warning_c: float
    warning_minutes: float = Field(ge=0)
    critical_c: float


class ThermalRunaway(_Section):
    above_room_c: float = Field(gt=0)
    float_current_ratio: float = Field(gt=1)


class Resistance(_Section):
    warning_rise_pct: float = Field(gt=0)
    critical_rise_pct: float = Field(gt=0)


class DataQuality(_Section):
    string_imbalance_v: float = Field(gt=0)
    stuck_sensor_minutes: float = Field(gt=0)
    missing_share_per_hour: float = Field(gt=0, le=1)


class Rul(_Section):
    warning_days: float = Field(gt=0)
    critical_days: float = Field(gt=0)


class Thresholds(_Section):
    float_voltage: FloatVoltage
    temperature: Temperature
    thermal_runaway: ThermalRunaway
    resistance: Resistance
    data_quality: DataQuality
    rul: Rul

    def risk_level(self, rul_p10_days: float) -> str:
        """critical / warning / ok from the pessimistic (P10) remaining life."""
        if rul_p10_days < self.rul.critical_days:
            return "critical"
        if rul_p10_days < self.rul.warning_days:
            return "warning"
        return "ok"


def load_thresholds(path: str | Path | None = None) -> Thresholds:
    path = Path(path) if path is not None else DEFAULT_THRESHOLDS_PATH
    try:
        return Thresholds.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ValueError(f"{path}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
