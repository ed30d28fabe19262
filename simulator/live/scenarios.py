"""The scenario catalogue and offsets, and what they do to a site at a given simulated time.

A scenario is applied to a target (a site, a string or a battery id), starts when the running
simulator first sees it and ends after its optional duration or when cleared. Offsets stay
until reset. Both are plain data (`control.json`), so the CLI, a Dagster job and the
dashboards drive the simulator through the same file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.live.engine import Effects, LiveSite


@dataclass(frozen=True)
class Scenario:
    name: str
    targets: tuple[str, ...]  # which kinds of target it applies to
    summary: str
    params: dict[str, tuple[float, float, float]]  # name: (default, min, max)


CATALOGUE = {s.name: s for s in (
    Scenario("normal", ("site", "string", "battery"),
             "normal operation: clears every scenario on the target", {}),
    Scenario("hvac_failure", ("site",),
             "cooling fails: the room climbs ~2 degC/h past 40 degC toward ~45 degC, the "
             "blocks lag behind it", {}),
    Scenario("power_outage", ("site", "string"),
             "grid down and the generator does not take the load: the strings discharge until "
             "power returns (the duration, default 30 min) or the weakest block reaches "
             "1.75 V/cell, then boost-recharge", {}),
    Scenario("thermal_runaway", ("battery",),
             "one block escalates past 60 degC within ~2 h with a rising float current", {}),
    Scenario("accelerated_degradation", ("site", "string", "battery"),
             "the target ages `factor` times faster than its temperature and voltage explain",
             {"factor": (500.0, 1.0, 100_000.0)}),
    Scenario("heat_wave", ("site",),
             "outdoor temperature +delta degC (5-15 for days); above the chiller's design "
             "outdoor temperature the room warms as with degraded cooling",
             {"delta_c": (10.0, 5.0, 15.0)}),
)}
DEFAULT_OUTAGE_S = 1800.0
OFFSETS = {  # name: (min, max, neutral) -- ranges an operator test could plausibly want
    "temperature_c": (-10.0, 20.0, 0.0),  # added to the target's block (or room) temperature
    "voltage_v": (-1.0, 1.0, 0.0),  # charger set point per 12 V block
    "discharge_rate": (0.1, 5.0, 1.0),  # load multiplier while on battery
}


class ScenarioError(ValueError):
    """A bad scenario name, target, parameter or offset; the message is one line for users."""


@dataclass(frozen=True)
class Targets:
    """Every id a scenario can name: sites, strings and in-service batteries."""

    sites: frozenset[str]
    strings: frozenset[str]
    batteries: frozenset[str]

    @classmethod
    def of(cls, sites: list[LiveSite]) -> Targets:
        return cls(frozenset(s.seed.site_id for s in sites),
                   frozenset(x for s in sites for x in s.seed.string_ids),
                   frozenset(x for s in sites for x in s.seed.battery_id))

    def kind(self, target: str) -> str:
        for kind, ids in (("site", self.sites), ("string", self.strings),
                          ("battery", self.batteries)):
            if target in ids:
                return kind
        raise ScenarioError(f"unknown target {target!r}: expected a site, string or "
                            f"in-service battery id (e.g. {min(self.sites)})")


def check_scenario(name: str, target: str, params: dict[str, float], targets: Targets) -> None:
    if name not in CATALOGUE:
        raise ScenarioError(f"unknown scenario {name!r}; one of: {', '.join(CATALOGUE)}")
    scenario, kind = CATALOGUE[name], targets.kind(target)
    if kind not in scenario.targets:
        raise ScenarioError(f"{name} applies to a {' or '.join(scenario.targets)}; "
                            f"{target} is a {kind}")
    for key, value in params.items():
        if key not in scenario.params:
            raise ScenarioError(f"{name} has no parameter {key!r}"
                                + (f" (it takes {', '.join(scenario.params)})"
                                   if scenario.params else ""))
        _, lo, hi = scenario.params[key]
        if not lo <= value <= hi:
            raise ScenarioError(f"{name} {key}={value:g} is outside {lo:g}..{hi:g}")


def check_offset(name: str, value: float, target: str, targets: Targets) -> None:
    targets.kind(target)
    if name not in OFFSETS:
        raise ScenarioError(f"unknown offset {name!r}; one of: {', '.join(OFFSETS)}")
    lo, hi, _ = OFFSETS[name]
    if not np.isfinite(value) or not lo <= value <= hi:
        raise ScenarioError(f"offset {name}={value:g} is outside {lo:g}..{hi:g}")


def effects(site: LiveSite, scenarios: list[dict], offsets: dict[str, dict], t_s: float) -> Effects:
    """The active scenarios' and offsets' effect on one site at simulated time `t_s`.
    `scenarios` are control-file entries with `start_s` stamped (active ones only)."""
    s = site.seed
    fx = site.effects()
    string_no = {sid: k for k, sid in enumerate(s.string_ids)}

    def masks(target: str) -> tuple[np.ndarray, np.ndarray]:
        """(units, strings) of this site the target covers."""
        if target == s.site_id:
            return np.ones(len(s.battery_id), bool), np.ones(len(s.string_ids), bool)
        strings = np.zeros(len(s.string_ids), bool)
        if target in string_no:
            strings[string_no[target]] = True
            return s.string_id == target, strings
        units = s.battery_id == target
        if units.any():
            strings[np.unique(s.units.string_idx[units])] = True
        return units, strings

    for sc in scenarios:
        units, strings = masks(sc["target"])
        if not units.any():
            continue
        params = {k: v[0] for k, v in CATALOGUE[sc["name"]].params.items()} | sc.get("params", {})
        end = sc["start_s"] + (sc.get("duration_s") or np.inf)
        if sc["name"] == "hvac_failure":
            fx.hvac_failed = True
        elif sc["name"] == "heat_wave":
            fx.heat_wave_c = max(fx.heat_wave_c, params["delta_c"])
        elif sc["name"] == "accelerated_degradation":
            fx.accel = np.where(units, fx.accel * params["factor"], fx.accel)
        elif sc["name"] == "thermal_runaway":
            fx.runaway_start_s = np.where(units, np.minimum(fx.runaway_start_s, sc["start_s"]),
                                          fx.runaway_start_s)
        elif sc["name"] == "power_outage":
            if not sc.get("duration_s"):
                end = sc["start_s"] + DEFAULT_OUTAGE_S
            live = strings & (t_s < end)
            fx.outage = fx.outage | live
            fx.outage_end_s = np.where(live, np.minimum(fx.outage_end_s, end), fx.outage_end_s)
    for target, values in offsets.items():
        units, strings = masks(target)
        if not units.any():
            continue
        temp = values.get("temperature_c", 0.0)
        if target == s.site_id:
            fx.room_offset_c += temp
        else:
            fx.unit_heat_c = fx.unit_heat_c + np.where(units, temp, 0.0)
        fx.voltage_offset_v = fx.voltage_offset_v + np.where(units, values.get("voltage_v", 0.0),
                                                             0.0)
        fx.discharge_rate = np.where(strings, fx.discharge_rate * values.get("discharge_rate", 1.0),
                                     fx.discharge_rate)
    return fx


def expired(scenario: dict, t_s: float) -> bool:
    """A scenario past its duration (a power outage without one lasts DEFAULT_OUTAGE_S)."""
    if scenario.get("start_s") is None:
        return False
    duration = scenario.get("duration_s") or (DEFAULT_OUTAGE_S if scenario["name"] ==
                                              "power_outage" else None)
    return duration is not None and t_s >= scenario["start_s"] + duration
