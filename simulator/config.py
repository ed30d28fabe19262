"""Fleet configuration: a readable TOML file, validated into typed objects.

The default fleet (DOMAIN.md §1) ships as `default_fleet.toml` next to this module. Users copy
and edit it; every mistake is reported as one `FleetConfigError` line naming the file, the
field and the problem.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_FLEET_PATH = Path(__file__).with_name("default_fleet.toml")


class FleetConfigError(ValueError):
    """A fleet config that cannot be used; the message is meant for the user as is."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BatteryModel(_Strict):
    code: str = Field(min_length=1, description="Model code, e.g. AGM12-120")
    rated_capacity_ah: float = Field(gt=0, description="C10 rated capacity (Ah)")
    design_life_years: float = Field(gt=0, description="Design life at 25 degC to 80 % capacity")
    new_resistance_mohm: float = Field(gt=0, description="Internal resistance when new (mOhm)")
    warranty_years: float = Field(ge=0, description="Warranty period from install")
    serial_prefix: str = Field(min_length=1, description="Prefix of generated serial numbers")
    peukert_exponent: float = Field(
        1.22, gt=1, le=1.6, description="Datasheet rate dependence of capacity (Peukert k): "
        "(t/10 h)^((k-1)/k) of C10 in a t-hour discharge")
    # Datasheet-level laws the RUL model reads instead of the simulator's own constants
    life_halving_c: float = Field(
        10.0, gt=0, description="Float life halves per this many degC above 25 degC "
        "(datasheet rule of thumb 10; IEEE 1188 guidance 8)")
    ohmic_temp_coeff_per_c: float = Field(
        0.01, ge=0, lt=0.05, description="Share per degC by which the ohmic reading falls as "
        "the block warms (IEEE 1188: compare at similar temperature; ~1 %/degC typical)")


class Region(_Strict):
    temp_offset_c: float = Field(description="Outdoor temperature offset vs. the national mean")
    humidity_offset_pct: float = Field(0.0, description="Relative-humidity offset")
    seasonality: float = Field(ge=0, description="Scale of the seasonal temperature swing")
    outages_per_year: float = Field(ge=0, description="Grid outages per year (Poisson rate)")
    outage_median_minutes: float = Field(gt=0, description="Median outage length (log-normal)")


class SiteSettings(_Strict):
    """Facility settings every site has; `site_defaults` fills what a site leaves out."""

    hvac_setpoint_c: float = Field(ge=15, le=40, description="Battery-room HVAC set point")
    hotspot_c: float = Field(ge=0, le=10, description="Worst battery position above room mean")
    hvac_degraded_per_year: float = Field(ge=0, description="Rate of reduced-cooling episodes")
    hvac_degraded_median_hours: float = Field(gt=0, description="Median degraded-episode length")
    hvac_failed_per_year: float = Field(ge=0, description="Rate of full cooling failures")
    hvac_failed_median_hours: float = Field(gt=0, description="Median cooling-failure length")
    generator_start_success: float = Field(ge=0, le=1, description="Share of outages covered")
    float_offset_v: float = Field(ge=-0.5, le=0.5, description="Charger float error per block (V)")
    replacement_delay_days: float = Field(
        30.0, gt=0, description="Longest time from a failed capacity test or a critical ohmic "
        "reading to the swap (procurement); the swap is drawn between a quarter and all of it")
    emergency_replacement_days: float = Field(
        3.0, gt=0, description="Longest time from a detected failure (short, runaway) to the swap")


class UnitReplacement(_Strict):
    system: str
    string: int = Field(ge=1)
    position: int = Field(ge=1)
    date: dt.date


class System(_Strict):
    code: str = Field(min_length=1)
    kind: Literal["ups", "rectifier"]
    strings: int = Field(gt=0)
    blocks_per_string: int = Field(gt=0)
    battery_model: str
    load_a: float = Field(gt=0, description="String discharge current during an outage (A)")
    string_installed: list[dt.date] | None = Field(
        None, description="Install date per string; defaults to the site's commissioning date"
    )


class Site(_Strict):
    code: str = Field(min_length=1)
    name: str
    region: str
    commissioned: dt.date
    systems: list[System] = Field(min_length=1)
    unit_replacements: list[UnitReplacement] = []
    hvac_setpoint_c: float | None = None
    hotspot_c: float | None = None
    hvac_degraded_per_year: float | None = None
    hvac_degraded_median_hours: float | None = None
    hvac_failed_per_year: float | None = None
    hvac_failed_median_hours: float | None = None
    generator_start_success: float | None = None
    float_offset_v: float | None = None
    replacement_delay_days: float | None = None
    emergency_replacement_days: float | None = None


class Fleet(_Strict):
    battery_models: list[BatteryModel] = Field(min_length=1)
    regions: dict[str, Region] = Field(min_length=1)
    site_defaults: SiteSettings
    sites: list[Site] = Field(min_length=1)

    @model_validator(mode="after")
    def _cross_references(self) -> Fleet:
        _unique("battery_models", [m.code for m in self.battery_models])
        _unique("sites", [s.code for s in self.sites])
        models = {m.code for m in self.battery_models}
        for i, site in enumerate(self.sites):
            where = f"sites[{i}] ({site.code})"
            if site.region not in self.regions:
                raise ValueError(
                    f"{where}.region: unknown region {site.region!r}; "
                    f"known: {', '.join(sorted(self.regions))}"
                )
            _unique(f"{where}.systems", [s.code for s in site.systems])
            systems = {s.code: s for s in site.systems}
            for system in site.systems:
                swhere = f"{where}.systems.{system.code}"
                if system.battery_model not in models:
                    raise ValueError(
                        f"{swhere}.battery_model: unknown model {system.battery_model!r}"
                    )
                installed = system.string_installed
                if installed is not None and len(installed) != system.strings:
                    raise ValueError(
                        f"{swhere}.string_installed: {len(installed)} dates for "
                        f"{system.strings} strings"
                    )
                for day in installed or []:
                    if day < site.commissioned:
                        raise ValueError(
                            f"{swhere}.string_installed: {day} is before the site was "
                            f"commissioned ({site.commissioned})"
                        )
            for rep in site.unit_replacements:
                system = systems.get(rep.system)
                if system is None:
                    raise ValueError(f"{where}.unit_replacements: unknown system {rep.system!r}")
                if rep.string > system.strings or rep.position > system.blocks_per_string:
                    raise ValueError(
                        f"{where}.unit_replacements: string {rep.string} position "
                        f"{rep.position} does not exist in {rep.system}"
                    )
        return self

    def settings(self, site: Site) -> SiteSettings:
        """The site's facility settings: its own values over `site_defaults`."""
        overrides = {
            name: getattr(site, name)
            for name in SiteSettings.model_fields
            if getattr(site, name) is not None
        }
        return self.site_defaults.model_copy(update=overrides)

    def model(self, code: str) -> BatteryModel:
        return next(m for m in self.battery_models if m.code == code)

    @property
    def battery_count(self) -> int:
        return sum(s.strings * s.blocks_per_string for site in self.sites for s in site.systems)

    def scaled(self, factor: int) -> Fleet:
        """The fleet repeated `factor` times (copies get a -Xnn site suffix), for benchmarks."""
        if factor < 1:
            raise FleetConfigError(f"scale factor must be a positive whole number, got {factor}")
        if factor == 1:
            return self
        sites = [
            site.model_copy(update={"code": f"{site.code}-X{k:02d}"}) if k else site
            for k in range(factor)
            for site in self.sites
        ]
        return self.model_copy(update={"sites": sites})


def _unique(where: str, codes: list[str]) -> None:
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            raise ValueError(f"{where}: duplicate code {code!r}")
        seen.add(code)


def load_fleet(
    path: str | Path | None = None, *, today: dt.date | None = None, scale: int = 1
) -> Fleet:
    """Read and validate a fleet TOML file (the default fleet when `path` is None)."""
    path = Path(path) if path is not None else DEFAULT_FLEET_PATH
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FleetConfigError(f"{path}: file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FleetConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_fleet(raw, source=str(path), today=today).scaled(scale)


def parse_fleet(raw: dict, *, source: str = "<fleet>", today: dt.date | None = None) -> Fleet:
    """Validate a fleet from its decoded TOML; errors name `source`, the field and the problem."""
    try:
        fleet = Fleet.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(part) for part in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        raise FleetConfigError(f"{source}: {loc + ': ' if loc else ''}{msg}") from None
    today = today or dt.date.today()
    for site in fleet.sites:
        dates = [site.commissioned] + [r.date for r in site.unit_replacements]
        dates += [d for s in site.systems for d in (s.string_installed or [])]
        future = [d for d in dates if d > today]
        if future:
            raise FleetConfigError(
                f"{source}: sites.{site.code}: install date {max(future)} is in the future"
            )
    return fleet
