"""The one threshold config (alert limits, RUL risk levels), read by every layer.

`thresholds.toml` holds the fleet defaults plus optional overrides per Thai season and per
site; `Thresholds.effective(site_id, season)` merges them (season first, then site), so the
simulator, the alert engine, `rul predict` and the reports all apply the same numbers.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

DEFAULT_THRESHOLDS_PATH = Path(__file__).with_name("thresholds.toml")

Season = Literal["hot", "rainy", "cool"]
SEASONS: tuple[str, ...] = ("hot", "rainy", "cool")
# Thai seasons by local calendar month (DOMAIN §2): hot Mar-May, rainy Jun-Oct, cool Nov-Feb
SEASON_OF_MONTH: dict[int, str] = {
    **dict.fromkeys((3, 4, 5), "hot"),
    **dict.fromkeys((6, 7, 8, 9, 10), "rainy"),
    **dict.fromkeys((11, 12, 1, 2), "cool"),
}
LOCAL_TZ = "Asia/Bangkok"  # every site's time zone (UTC+7, no DST): seasons follow local months
UTC_OFFSET = dt.timedelta(hours=7)


def season_of(ts: dt.datetime) -> str:
    """Thai season of a UTC instant (naive means UTC), by the Bangkok calendar month."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(dt.UTC).replace(tzinfo=None)
    return SEASON_OF_MONTH[(ts + UTC_OFFSET).month]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FloatVoltage(_Section):
    low_v: float = Field(gt=0)
    high_v: float = Field(gt=0)
    compensation_v_per_c: float
    compensation_min_c: float
    compensation_max_c: float
    warning_minutes: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> FloatVoltage:
        if not self.low_v < self.high_v:
            raise ValueError(f"low_v ({self.low_v}) must be below high_v ({self.high_v})")
        return self


class Temperature(_Section):
    warning_c: float
    warning_minutes: float = Field(ge=0)
    critical_c: float
    critical_minutes: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Temperature:
        if not self.warning_c < self.critical_c:
            raise ValueError(f"warning_c ({self.warning_c}) must be below critical_c "
                             f"({self.critical_c})")
        return self


class ThermalRunaway(_Section):
    above_room_c: float = Field(gt=0)
    float_current_ratio: float = Field(gt=1)


class Resistance(_Section):
    warning_rise_pct: float = Field(gt=0)
    critical_rise_pct: float = Field(gt=0)
    hold_minutes: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Resistance:
        if not self.warning_rise_pct < self.critical_rise_pct:
            raise ValueError(f"warning_rise_pct ({self.warning_rise_pct}) must be below "
                             f"critical_rise_pct ({self.critical_rise_pct})")
        return self


class DataQuality(_Section):
    string_imbalance_v: float = Field(gt=0)
    string_imbalance_minutes: float = Field(ge=0)
    stuck_sensor_minutes: float = Field(gt=0)
    missing_share_per_hour: float = Field(gt=0, le=1)


class Discharge(_Section):
    warning_block_v: float = Field(gt=0)
    critical_block_v: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Discharge:
        if not self.critical_block_v < self.warning_block_v:
            raise ValueError(f"critical_block_v ({self.critical_block_v}) must be below "
                             f"warning_block_v ({self.warning_block_v})")
        return self


class Rul(_Section):
    warning_days: float = Field(gt=0)
    critical_days: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Rul:
        if not self.critical_days < self.warning_days:
            raise ValueError(f"critical_days ({self.critical_days}) must be below "
                             f"warning_days ({self.warning_days})")
        return self


class Hysteresis(_Section):
    """How far a value must come back past its limit before an open alert resolves."""

    temperature_c: float = Field(ge=0)
    voltage_v: float = Field(ge=0)
    resistance_pct: float = Field(ge=0)
    current_ratio: float = Field(ge=0)
    missing_share: float = Field(ge=0)
    rul_days: float = Field(ge=0)


# Sections an override may change, in the order they appear in the file.
_SECTIONS: dict[str, type[_Section]] = {
    "float_voltage": FloatVoltage,
    "temperature": Temperature,
    "thermal_runaway": ThermalRunaway,
    "resistance": Resistance,
    "data_quality": DataQuality,
    "discharge": Discharge,
    "rul": Rul,
    "hysteresis": Hysteresis,
}


def _partial(model: type[_Section]) -> type[_Section]:
    """The section with every field optional: an override names only what it changes."""
    fields: dict[str, Any] = {n: (f.annotation | None, None) for n, f in model.model_fields.items()}
    return create_model(f"{model.__name__}Override", __base__=_Section, **fields)


Overrides = create_model(
    "Overrides", __base__=_Section,
    **{name: (_partial(model) | None, None) for name, model in _SECTIONS.items()},
)


class Thresholds(_Section):
    float_voltage: FloatVoltage
    temperature: Temperature
    thermal_runaway: ThermalRunaway
    resistance: Resistance
    data_quality: DataQuality
    discharge: Discharge
    rul: Rul
    hysteresis: Hysteresis
    seasons: dict[Season, Overrides] = Field(default_factory=dict)  # type: ignore[valid-type]
    sites: dict[str, Overrides] = Field(default_factory=dict)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _overrides_valid(self) -> Thresholds:
        """Every season x site combination must itself be a valid config, so a bad override
        fails at load time rather than when its season comes round."""
        for season in SEASONS:
            for site in [None, *self.sites]:
                self._merge(site, season)
        return self

    def risk_level(self, rul_p10_days: float) -> str:
        """critical / warning / ok from the pessimistic (P10) remaining life."""
        if rul_p10_days < self.rul.critical_days:
            return "critical"
        if rul_p10_days < self.rul.warning_days:
            return "warning"
        return "ok"

    def effective(self, site_id: str, season: str) -> Thresholds:
        """The limits that apply at one site in one season: the defaults, then the season's
        overrides, then the site's (a site knows its own room best)."""
        if season not in SEASONS:
            raise ValueError(f"season: expected one of {', '.join(SEASONS)}, got {season!r}")
        return self._merge(site_id, season)

    def _merge(self, site_id: str | None, season: str) -> Thresholds:
        layers = [self.seasons.get(season), self.sites.get(site_id) if site_id else None]
        if not any(layers):
            return self.model_copy(update={"seasons": {}, "sites": {}})
        merged = {name: getattr(self, name).model_dump() for name in _SECTIONS}
        for layer in filter(None, layers):
            for section, values in layer.model_dump(exclude_none=True).items():
                merged[section].update(values)
        try:
            return Thresholds.model_validate(merged)
        except ValidationError as exc:
            where = f"site {site_id}, {season} season" if site_id else f"{season} season"
            raise ValueError(f"overrides for {where}: {_describe(exc)}") from None


def load_thresholds(path: str | Path | None = None) -> Thresholds:
    path = Path(path) if path is not None else DEFAULT_THRESHOLDS_PATH
    try:
        return Thresholds.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        raise ValueError(f"{path}: {_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    """The first problem as `where: what`, in the file's own terms."""
    err = exc.errors()[0]
    loc = ".".join(str(part) for part in err["loc"] if part != "[key]")
    if err["type"] == "extra_forbidden":
        msg = "unknown section or field"
    else:
        msg = err["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg
