"""What the battery room's climate does to battery life: a set-point change or the removal of
HVAC faults, computed with the simulator's own ageing physics rather than a rule of thumb.

Method (also returned, with the site's numbers, as `WhatIf.assumptions` for the page):
- Calendar life is consumed at the Arrhenius acceleration factor AF of the block temperature
  (`simulator.physics.arrhenius_factor`, the simulator's `PhysicsParams`). A block's remaining
  "reference life" (years at 25 degC) is L = RUL x mean AF over the baseline year, the last
  365 days of recorded room temperature; its scenario RUL is L / mean AF over the scenario
  year, the same factor for P10, P50 and P90 (the year is taken to repeat).
- The scenario year is the recorded room plus the simulator's room response to the change
  (`SiteEnvironment.room_target` through the room's 8-h lag, `ROOM_TAU_S`): with HVAC normal
  the room tracks the set point (plus 6 % of any outdoor excess over it), so it moves by the
  full delta, or 94 % of it when hotter outside than the set point; degraded cooling moves it
  by 55 %; with HVAC failed the room follows the outdoor heat and does not move. Faults are
  removed by giving those hours the normal-state target at that hour's recorded outdoor
  temperature. With no change the scenario is the baseline exactly.
- Block temperature is the room plus the position's hot spot, averaged over the simulator's
  spread of positions (hotspot_c x u^2, u uniform; `simulator.fleet`).
- Cycle (outage) damage and float stress are held as they are: outages do not follow the set
  point, and the charger's compensation follows the room, so float stress does not either.
- A block due within the horizon is replaced at its RUL by a new block of the same model,
  which lives design_life_years / mean AF of the same year, so a hot site can replace twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import polars as pl

from models.predict import QUANTILES
from models.replacement import Costs, in_service, latest_scores
from simulator import physics as ph
from simulator.config import BatteryModel
from simulator.environment import (
    ROOM_LEAK_DEGRADED,
    ROOM_LEAK_NORMAL,
    ROOM_TAU_S,
    SiteEnvironment,
)
from simulator.schema import HVAC_STATES

BASELINE_DAYS = 365  # the baseline year: the last 365 days of the room's history
HORIZONS_YEARS = (1, 2, 3)  # budget horizons the page compares
DAYS_PER_YEAR = 365  # horizon years in days, as the replacement plan's 365-day budget year
LIFE_DAYS_PER_YEAR = ph.HOURS_PER_YEAR / 24.0  # design life years in days, as the simulator
HOUR_S = 3600.0  # the room is evaluated on hourly means, the simulator's physics clock
# Midpoint rule over the hot-spot draw u ~ U(0, 1) of simulator.fleet (hotspot_c u^2): AF is
# smooth in u, and 16 nodes put the mean within 0.1 % of the exact integral for offsets <= 10.
HOTSPOT_NODES = 16
cl = pl.col


@dataclass(frozen=True)
class Scenario:
    """The change to the battery room: a set-point move (degC) and/or no HVAC faults."""

    setpoint_delta_c: float = 0.0
    remove_hvac_faults: bool = False


@dataclass(frozen=True)
class WhatIf:
    """Baseline against scenario for one site.

    horizons: years, horizon_days, baseline_/scenario_replacements (by P50) with _low (by
      P90) and _high (by P10), delta_replacements, baseline_/scenario_cost, delta_cost, currency
    batteries: battery_id, string_id, battery_model, rul_p10/p50/p90_days and
      scenario_rul_p10/p50/p90_days
    year: ts, hvac_state, outdoor_temp_c, room_temp_c, scenario_room_c (hourly means)
    """

    site_id: str
    scenario: Scenario
    horizons: pl.DataFrame
    batteries: pl.DataFrame
    year: pl.DataFrame
    mean_room_c_baseline: float
    mean_room_c_scenario: float
    mean_af_baseline: float
    mean_af_scenario: float
    life_ratio: float  # scenario RUL / baseline RUL = mean AF baseline / mean AF scenario
    unscored: int
    currency: str
    assumptions: list[str] = field(default_factory=list)


def _room_target(outdoor_c: np.ndarray, state: np.ndarray, setpoint_c: float) -> np.ndarray:
    """The simulator's own room law; `SiteEnvironment.room_target` reads only the set point."""
    site = SimpleNamespace(settings=SimpleNamespace(hvac_setpoint_c=setpoint_c))
    return SiteEnvironment.room_target(site, None, outdoor_c, state)  # type: ignore[arg-type]


def scenario_year(environment: pl.DataFrame, setpoint_c: float,
                  scenario: Scenario) -> pl.DataFrame:
    """The last 365 days of the room, hourly: recorded (baseline) and under the scenario."""
    need = ("ts", "room_temp_c", "outdoor_temp_c", "hvac_state")
    missing = [c for c in need if c not in environment.columns]
    if missing:
        raise ValueError(f"environment: missing column(s) {', '.join(missing)}")
    env = (environment.select(need).filter(cl("room_temp_c").is_not_null()).sort("ts")
           .with_columns(cl("hvac_state").fill_null("normal")))  # no state recorded: normal
    if env.is_empty():
        raise ValueError("environment: no room temperature readings")
    env = env.filter(cl("ts") > env["ts"].max() - dt.timedelta(days=BASELINE_DAYS))
    env = env.with_columns(cl("outdoor_temp_c").forward_fill().backward_fill())
    if env["outdoor_temp_c"].null_count():
        raise ValueError("environment: outdoor_temp_c is empty throughout the year")
    unknown = set(env["hvac_state"].drop_nulls().unique()) - set(HVAC_STATES)
    if unknown:
        raise ValueError(f"environment: hvac_state: unknown value(s) {sorted(unknown)}")
    state = env["hvac_state"].replace_strict(
        {s: i for i, s in enumerate(HVAC_STATES)}, default=0, return_dtype=pl.Int8).to_numpy()
    outdoor = env["outdoor_temp_c"].cast(pl.Float64).to_numpy()
    scen_state = np.zeros_like(state) if scenario.remove_hvac_faults else state
    change = (_room_target(outdoor, scen_state, setpoint_c + scenario.setpoint_delta_c)
              - _room_target(outdoor, state, setpoint_c))
    hourly = env.with_columns(change=pl.Series(change), state=pl.Series(state)).group_by_dynamic(
        "ts", every="1h").agg(
        cl("room_temp_c").cast(pl.Float64).mean(), cl("outdoor_temp_c").cast(pl.Float64).mean(),
        cl("change").mean(), cl("state").max())
    # The room follows its target through a first-order lag; the model is linear, so the
    # scenario room is the recorded one plus the lagged change of target, started in steady
    # state (the change is taken to have been in place before the year began).
    alpha = ph.lag_coefficient(HOUR_S, ROOM_TAU_S)
    delta = hourly["change"].to_numpy()
    from scipy.signal import lfilter  # lazy: importing scipy.signal takes ~2.5 s
    lagged, _ = lfilter([alpha], [1.0, alpha - 1.0], delta, zi=[(1.0 - alpha) * delta[0]])
    return hourly.select(
        "ts", cl("state").replace_strict(dict(enumerate(HVAC_STATES)), return_dtype=pl.String)
        .alias("hvac_state"), "outdoor_temp_c", "room_temp_c",
        scenario_room_c=cl("room_temp_c") + pl.Series(lagged))


def mean_acceleration(room_c: np.ndarray, hotspot_c: float, params: ph.PhysicsParams) -> float:
    """Mean Arrhenius factor of the blocks over the hours, across the hot-spot spread."""
    u = (np.arange(HOTSPOT_NODES) + 0.5) / HOTSPOT_NODES
    temp = np.asarray(room_c, dtype=np.float64)[:, None] + hotspot_c * u[None, :] ** 2
    return float(ph.arrhenius_factor(temp, params).mean())


def replacements(rul_days: np.ndarray, life_days: np.ndarray, horizon_days: float) -> np.ndarray:
    """Replacements per block within the horizon: at its RUL, then every new block's life."""
    rul, life = np.asarray(rul_days, dtype=np.float64), np.asarray(life_days, dtype=np.float64)
    again = np.floor(np.maximum(horizon_days - rul, 0.0) / life)
    return np.where(rul <= horizon_days, 1 + again, 0).astype(np.int64)


def replacement_cost(rul_days: np.ndarray, life_days: np.ndarray, horizon_days: float,
                     unit_cost: np.ndarray, string_idx: np.ndarray, fixed: float) -> float:
    """Blocks' price and labour, plus the per-string fixed cost once per string and year with
    work (the replacement plan's one visit per string within its year)."""
    n = replacements(rul_days, life_days, horizon_days)
    if not n.any():
        return 0.0
    k = np.arange(n.max())
    when = np.asarray(rul_days)[:, None] + k[None, :] * np.asarray(life_days)[:, None]
    done = k[None, :] < n[:, None]
    year = np.floor(when / DAYS_PER_YEAR).astype(np.int64)
    visits = np.unique((np.asarray(string_idx)[:, None] * 1_000_000 + year)[done]).size
    return float((n * unit_cost).sum() + fixed * visits)


def what_if(predictions: pl.DataFrame, environment: pl.DataFrame, batteries: pl.DataFrame,
            battery_models: Sequence[BatteryModel], costs: Costs, scenario: Scenario, *,
            setpoint_c: float, hotspot_c: float = 0.0, params: ph.PhysicsParams | None = None,
            horizons_years: Sequence[int] = HORIZONS_YEARS) -> WhatIf:
    """Baseline against scenario for one site's batteries (their latest scores and the site's
    room history, set point `setpoint_c` and worst hot spot `hotspot_c`, sites table)."""
    p = params or ph.PhysicsParams()
    sites = predictions["site_id"].unique().to_list() if "site_id" in predictions.columns else []
    if len(sites) != 1:
        raise ValueError(f"predictions: expected the scores of one site, got {len(sites)}")
    site_id = sites[0]
    year = scenario_year(environment, setpoint_c, scenario)
    af_b = mean_acceleration(year["room_temp_c"].to_numpy(), hotspot_c, p)
    af_s = mean_acceleration(year["scenario_room_c"].to_numpy(), hotspot_c, p)
    ratio = af_b / af_s

    life_y = {m.code: m.design_life_years for m in battery_models}
    fleet = costs.with_unit_cost(in_service(batteries).filter(cl("site_id") == site_id))
    unknown = set(fleet["battery_model"]) - set(life_y)
    if unknown:
        raise ValueError(f"battery_models: no design life for {sorted(unknown)}")
    scores = latest_scores(predictions).select("battery_id", *QUANTILES, "usable")
    fleet = fleet.join(scores, on="battery_id", how="left").with_columns(
        cl("usable").fill_null(False),
        design_days=cl("battery_model").replace_strict(life_y, return_dtype=pl.Float64)
        * LIFE_DAYS_PER_YEAR)
    unscored = int((~fleet["usable"]).sum())
    ok = fleet.filter(cl("usable")).sort("battery_id").with_columns(
        string_idx=cl("string_id").rank("dense"))
    per_battery = ok.select("battery_id", "string_id", "battery_model", *QUANTILES,
                            *[(cl(q) * ratio).alias(f"scenario_{q}") for q in QUANTILES])

    unit, strings = ok["unit_cost"].to_numpy(), ok["string_idx"].cast(pl.Int64).to_numpy()
    fixed = costs.per_string.fixed_cost
    rows = []
    for years in horizons_years:  # a handful of horizons, each vectorised over batteries
        h = years * DAYS_PER_YEAR
        row: dict[str, object] = {"years": years, "horizon_days": h}
        for arm, af, scale in (("baseline", af_b, 1.0), ("scenario", af_s, ratio)):
            life = ok["design_days"].to_numpy() / af
            rul = {q: ok[q].to_numpy() * scale for q in QUANTILES}
            row[f"{arm}_replacements"] = int(replacements(rul["rul_p50_days"], life, h).sum())
            row[f"{arm}_low"] = int(replacements(rul["rul_p90_days"], life, h).sum())
            row[f"{arm}_high"] = int(replacements(rul["rul_p10_days"], life, h).sum())
            row[f"{arm}_cost"] = replacement_cost(rul["rul_p50_days"], life, h, unit, strings,
                                                  fixed)
        rows.append(row)
    horizons = pl.DataFrame(rows).with_columns(
        delta_replacements=cl("scenario_replacements") - cl("baseline_replacements"),
        delta_cost=cl("scenario_cost") - cl("baseline_cost"),
        currency=pl.lit(costs.currency.code))

    room_b = float(year["room_temp_c"].mean())
    room_s = float(year["scenario_room_c"].mean())
    notes = _assumptions(year, setpoint_c, hotspot_c, scenario, p, af_b, af_s, life_y, unscored,
                         costs.currency.code)
    return WhatIf(site_id, scenario, horizons, per_battery, year, room_b, room_s, af_b, af_s,
                  ratio, unscored, costs.currency.code, notes)


def _assumptions(year: pl.DataFrame, setpoint_c: float, hotspot_c: float, scenario: Scenario,
                 p: ph.PhysicsParams, af_b: float, af_s: float, life_y: dict[str, float],
                 unscored: int, currency: str) -> list[str]:
    """The method in words, with this site's numbers, for the page."""
    d = scenario.setpoint_delta_c
    faults = int((year["hvac_state"] != "normal").sum())
    lives = ", ".join(f"{m} {y:g} y -> {y / af_b:.1f} y baseline, {y / af_s:.1f} y scenario"
                      for m, y in sorted(life_y.items()))
    notes = [
        (f"Calendar life is consumed at the Arrhenius acceleration factor of the block "
         f"temperature, the simulator's own law: life halves every {p.halving_interval_c:g} "
         f"degC above {p.reference_temp_c:g} degC (Ea {p.activation_energy_ev:.2f} eV)."),
        (f"Remaining reference life = RUL x mean factor over the baseline year "
         f"({year['ts'].min():%Y-%m-%d} to {year['ts'].max():%Y-%m-%d}, {year.height} hours, "
         f"mean room {year['room_temp_c'].mean():.1f} degC, factor {af_b:.3f}); scenario RUL "
         f"= that / the scenario year's factor ({af_s:.3f}): x{af_b / af_s:.3f} for P10, P50 "
         f"and P90 alike, the year taken to repeat."),
        (f"Set point {setpoint_c:g} -> {setpoint_c + d:g} degC through the simulator's room "
         f"model: with HVAC normal the room moves by the full change "
         f"({1 - ROOM_LEAK_NORMAL:.0%} of it in hours hotter outside than the set point), with "
         f"cooling degraded by {1 - ROOM_LEAK_DEGRADED:.0%} of it, with HVAC failed not at all "
         f"(the room follows the outdoor heat); the room reaches it through its "
         f"{ROOM_TAU_S / HOUR_S:g}-h thermal lag."),
    ]
    if scenario.remove_hvac_faults:
        notes.append(
            f"HVAC faults removed: the {faults} degraded or failed hours get the room the "
            f"simulator's HVAC holds when normal at that hour's recorded outdoor temperature "
            f"(set point plus {ROOM_LEAK_NORMAL:.0%} of any outdoor excess), through the same "
            f"lag. A fault in cool weather can have kept the room below that: those hours warm.")
    notes.append(
        f"Block temperature = room + the position's hot spot, spread as in the simulator "
        f"(worst position {hotspot_c:g} degC above the room)." if hotspot_c > 0 else
        "No hot-spot offset: blocks taken at room temperature.")
    notes += [
        ("Cycle (outage) damage and float-voltage stress are held as they are: outages do not "
         "follow the set point, and the charger's temperature compensation follows the room."),
        (f"A block due within the horizon is replaced at its RUL by a new block of the same "
         f"model living design life / the year's factor ({lives}), and again when that runs "
         f"out. Counts by each battery's P50, the range by its P90 (fewest) and P10 (most); "
         f"unit spread, cycle damage and sudden failures of new blocks are not modelled."),
        (f"Cost ({currency}): price and labour per block replaced, plus the per-string fixed "
         f"cost once per string and year with work; the plan's whole-string rule is not "
         f"applied. Prices from the replacement costs file (illustrative defaults unless "
         f"edited)."),
        f"{unscored} batteries of the site without a usable score are left out of the counts.",
    ]
    return notes
