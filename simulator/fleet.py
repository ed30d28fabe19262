"""From the fleet config to tables and to the hidden per-unit parameters the physics needs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from simulator import ageing
from simulator import physics as ph
from simulator.config import Fleet, Site
from simulator.schema import conform
from simulator.streams import stream

EPOCH = dt.date(1970, 1, 1)
DEFECT_SHARE = 0.008  # early-life defects: under 1 % of units (manufacturer field returns)
DEFECT_LIFE = 0.35  # a defective unit wears ~3x faster ...
DEFECT_RESISTANCE = 1.35  # ... and is an ohmic outlier from commissioning (DOMAIN §3)
BLOCK_FLOAT_SPREAD_V = 0.03  # block-to-block float share on one string (~5 mV/cell)
SULFATION_FLOAT_DROP_V = 0.08  # sulfating blocks float low (DOMAIN §3 signature)


def day_s(day: dt.date) -> float:
    return float((day - EPOCH).days * 86_400)


def string_ids(site: Site) -> list[tuple[str, str, int, dt.date]]:
    """(string_id, system_id, string_no, installed) for every string of a site."""
    out = []
    for system in site.systems:
        system_id = f"{site.code}-{system.code}"
        dates = system.string_installed or [site.commissioned] * system.strings
        for k in range(system.strings):
            out.append((f"{system_id}-S{k + 1}", system_id, k + 1, dates[k]))
    return out


def fleet_tables(fleet: Fleet) -> dict[str, pl.DataFrame]:
    """The static fleet tables: sites, systems and strings."""
    sites, systems, strings = [], [], []
    for site in fleet.sites:
        cfg = fleet.settings(site)
        sites.append({
            "site_id": site.code, "name": site.name, "region": site.region,
            "commissioned": site.commissioned, "hvac_setpoint_c": cfg.hvac_setpoint_c,
            "hotspot_c": cfg.hotspot_c, "float_offset_v": cfg.float_offset_v,
        })
        for system in site.systems:
            systems.append({
                "system_id": f"{site.code}-{system.code}", "site_id": site.code,
                "kind": system.kind, "battery_model": system.battery_model,
                "strings": system.strings, "blocks_per_string": system.blocks_per_string,
                "load_a": system.load_a,
            })
        for string_id, system_id, no, installed in string_ids(site):
            strings.append({"string_id": string_id, "system_id": system_id,
                            "site_id": site.code, "string_no": no, "installed": installed})
    return {
        "sites": conform(pl.DataFrame(sites), "sites"),
        "systems": conform(pl.DataFrame(systems), "systems"),
        "strings": conform(pl.DataFrame(strings), "strings"),
    }


@dataclass
class Slot:
    """One battery position on a string, and the unit that occupies it."""

    battery_id: str
    string_id: str
    string_idx: int
    position: int
    model: str
    install: dt.date


def initial_slots(fleet: Fleet, site: Site, window_end: dt.date) -> list[Slot]:
    """Units in service when the window opens (or installed during it, per the config)."""
    replaced = {(r.system, r.string, r.position): r.date for r in site.unit_replacements}
    slots = []
    for idx, (string_id, system_id, no, installed) in enumerate(string_ids(site)):
        system = next(s for s in site.systems if f"{site.code}-{s.code}" == system_id)
        for pos in range(1, system.blocks_per_string + 1):
            install = max(installed, replaced.get((system.code, no, pos), installed))
            if install < window_end:
                slots.append(Slot(f"{string_id}-J{pos:02d}", string_id, idx, pos,
                                  system.battery_model, install))
    return slots


def draw_units(
    fleet: Fleet, site: Site, slots: list[Slot], seed: int, p: ph.PhysicsParams
) -> tuple[ageing.Units, pl.DataFrame]:
    """Hidden per-unit parameters (own random stream per battery id) and battery rows."""
    cfg = fleet.settings(site)
    n = len(slots)
    cols = {k: np.zeros(n) for k in (
        "rated", "life_y", "c0", "r0", "life", "growth", "hot", "float", "e_s", "e_r")}
    mode = np.zeros(n, dtype=np.int8)
    rows = []
    for i, slot in enumerate(slots):
        model = fleet.model(slot.model)
        rng = stream(seed, slot.battery_id, "unit")
        u = rng.uniform(size=4)
        hot_c = cfg.hotspot_c * u[0] ** 2  # most blocks near the room mean, a few hot
        p_dry = np.clip(0.08 + 0.04 * (cfg.hvac_setpoint_c + hot_c - 24.0), 0.02, 0.4)
        p_dry += 0.25 if cfg.float_offset_v > 0.1 else 0.0
        p_sulf = 0.6 if cfg.float_offset_v < -0.05 else 0.05
        if u[1] < DEFECT_SHARE:
            mode[i] = ageing.DEFECT
        elif u[2] < p_sulf:
            mode[i] = ageing.SULFATION
        elif u[3] < p_dry:
            mode[i] = ageing.DRY_OUT
        else:
            mode[i] = ageing.CORROSION
        defect = mode[i] == ageing.DEFECT
        cols["rated"][i] = model.rated_capacity_ah
        cols["life_y"][i] = model.design_life_years
        cols["c0"][i] = model.rated_capacity_ah * (1 + p.capacity_spread * rng.standard_normal())
        cols["r0"][i] = model.new_resistance_mohm * (
            1 + p.resistance_spread * rng.standard_normal()) * (DEFECT_RESISTANCE if defect else 1)
        cols["life"][i] = rng.lognormal(0.0, p.life_spread_sigma) * (DEFECT_LIFE if defect else 1)
        cols["growth"][i] = p.resistance_rise_at_eol * rng.lognormal(0.0, 0.3) * {
            ageing.DRY_OUT: 1.5, ageing.SULFATION: 1.2}.get(int(mode[i]), 1.0)
        cols["hot"][i] = hot_c
        cols["float"][i] = BLOCK_FLOAT_SPREAD_V * rng.standard_normal() - (
            SULFATION_FLOAT_DROP_V if mode[i] == ageing.SULFATION else 0.0)
        cols["e_s"][i], cols["e_r"][i] = rng.exponential(size=2)
        serial = f"{model.serial_prefix}-{slot.install:%y%m}-{rng.integers(10**5):05d}"
        rows.append({
            "battery_id": slot.battery_id, "string_id": slot.string_id, "site_id": site.code,
            "position": slot.position, "battery_model": model.code,
            "rated_capacity_ah": model.rated_capacity_ah, "serial": serial,
            "install_date": slot.install, "removed_date": None,
            "warranty_end": slot.install + dt.timedelta(days=round(365.25 * model.warranty_years)),
        })
    string_idx = np.array([s.string_idx for s in slots])
    # the charger holds the string voltage: block shares sum to zero around the set point
    share = cols["float"]
    for k in np.unique(string_idx):
        share[string_idx == k] -= share[string_idx == k].mean()
    units = ageing.Units(
        string_idx=string_idx,
        install_s=np.array([day_s(s.install) for s in slots]),
        rated_ah=cols["rated"], design_life_y=cols["life_y"], c0_ah=cols["c0"],
        r0_mohm=cols["r0"], life_factor=cols["life"], r_growth=cols["growth"],
        hotspot_c=cols["hot"], float_v_offset=share + cfg.float_offset_v, wear_mode=mode,
        e_short=cols["e_s"], e_runaway=cols["e_r"],
    )
    return units, conform(pl.DataFrame(rows, schema_overrides={"removed_date": pl.Date}),
                          "batteries")
