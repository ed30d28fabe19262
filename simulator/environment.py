"""Per-site environment: Thai outdoor climate, the battery room's HVAC, and the grid.

All randomness is drawn once per site as calendar-day weather anomalies and continuous-time
episodes (HVAC faults, outages), so the environment can be sampled on any time grid and the
same instant has the same weather whatever the step. Figures: DOMAIN.md §2.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from simulator import intervals
from simulator.config import Region, SiteSettings
from simulator.physics import lag_coefficient
from simulator.streams import stream

DAY_S = 86_400.0
YEAR_S = 365.25 * DAY_S
BANGKOK_UTC_OFFSET_H = 7.0  # all sites are in Asia/Bangkok (UTC+7, no DST)

NATIONAL_MEAN_C = 28.0  # Thai lowland annual mean (DOMAIN §2: Bangkok ~28 with +1.5 central)
# Seasonal anomaly of the monthly mean (degC, mid-month, January first) for a region with
# seasonality 1.0. Shape of Thai lowland climate normals: coolest in late December/January,
# hottest in April, the rainy season a little above the annual mean (cloud cover holds it
# there), not down at cool-season level. Scaled so the daily cycle spans DOMAIN §2's ranges:
# central hot season ~28-37, rainy ~25-35, cool ~22-31 degC; with the regions' seasonality
# Chiang Mai runs ~22 degC in December and ~30 in April, as its normals do.
SEASONAL_ANOMALY_C = (-2.2, -0.6, 1.2, 2.9, 2.2, 1.2, 0.6, 0.3, -0.3, -0.8, -1.5, -3.0)
MID_MONTH_DOY = tuple(15.2 + 30.44 * k for k in range(12))
# Monthly mean relative humidity (%, January first) of Thai lowland climate normals (Bangkok
# ~70 % in the hot season, ~80 % in the rainy months, mid-60s in December; DOMAIN §2 ranges);
# regions shift it by their humidity offset, the daily cycle swings it around the mean.
MONTHLY_RH_PCT = (66.0, 69.0, 69.0, 70.0, 74.0, 76.0, 77.0, 78.0, 81.0, 79.0, 72.0, 65.0)
DIURNAL_AMPLITUDE_C = 4.8  # half of the ~10 degC day-night range in every season (DOMAIN §2)
AFTERNOON_PEAK_H = 15.0  # daily maximum mid-afternoon (DOMAIN §2)
WEATHER_SIGMA_C = 1.2  # day-to-day anomaly spread (synoptic weather noise)
WEATHER_PERSISTENCE = 0.7  # AR(1) day-to-day correlation of the anomaly
ROOM_TAU_S = 8 * 3600.0  # room heats ~2 degC/h toward an ~18 degC gap when cooling fails
ROOM_LEAK_NORMAL = 0.06  # share of the outdoor excess a working HVAC lets through
ROOM_LEAK_DEGRADED = 0.45  # partial cooling (one compressor or a clogged filter)
IT_HEAT_RISE_C = 6.0  # with no cooling the IT load heats the room above outdoor
EPISODE_SIGMA = 0.8  # log-normal shape of HVAC-episode and outage durations
GENERATOR_PICKUP_S = (10.0, 60.0)  # generators pick the load up within a minute (DOMAIN §2)


def _rainy_season(doy: np.ndarray) -> np.ndarray:
    return (doy >= 152) & (doy < 305)  # June-October


def _day_of_year(t: np.ndarray) -> np.ndarray:
    local_days = (np.asarray(t) / DAY_S) + BANGKOK_UTC_OFFSET_H / 24.0
    return local_days % 365.25  # day 0 = 1 January to within a day: enough for seasons


def _local_hour(t: np.ndarray) -> np.ndarray:
    return ((np.asarray(t) / 3600.0) + BANGKOK_UTC_OFFSET_H) % 24.0


def outage_weight(t: np.ndarray) -> np.ndarray:
    """Relative outage likelihood: rainy-season afternoon storms cluster them (DOMAIN §2)."""
    doy, hour = _day_of_year(t), _local_hour(t)
    afternoon = (hour >= 13) & (hour < 19)
    return np.where(_rainy_season(doy), np.where(afternoon, 4.0, 1.5), 0.6)


@cache
def outage_weight_mean() -> float:
    """Mean of `outage_weight` over a year (10-minute grid), so that the modulated rate keeps
    the configured outages per year on average."""
    return float(outage_weight(np.arange(0.0, YEAR_S, 600.0)).mean())


@dataclass
class SiteEnvironment:
    """All random draws of one site's environment over [t0, t1) (seconds since epoch)."""

    t0: float
    t1: float
    region: Region
    settings: SiteSettings
    day_anomaly_c: np.ndarray  # one weather anomaly per calendar day from t0
    day_humidity: np.ndarray
    degraded: tuple[np.ndarray, np.ndarray]
    failed: tuple[np.ndarray, np.ndarray]
    outages: tuple[np.ndarray, np.ndarray]
    generator_ok: np.ndarray  # per outage: did the generator start?
    pickup_s: np.ndarray  # per outage: seconds on battery before the generator took the load

    @classmethod
    def draw(
        cls, seed: int, site_id: str, region: Region, settings: SiteSettings, t0: float,
        t1: float,
    ) -> SiteEnvironment:
        t0 = np.floor(t0 / DAY_S) * DAY_S
        n_days = int(np.ceil((t1 - t0) / DAY_S)) + 2
        rng = stream(seed, site_id, "weather")
        shocks = rng.normal(0.0, WEATHER_SIGMA_C * np.sqrt(1 - WEATHER_PERSISTENCE**2), n_days)
        from scipy.signal import lfilter  # lazy: importing scipy.signal takes ~2.5 s
        anomaly = lfilter([1.0], [1.0, -WEATHER_PERSISTENCE], shocks)
        humidity = rng.normal(0.0, 5.0, n_days) - 1.5 * anomaly  # hot spells are drier

        def episodes(kind: str, rate: float, median_h: float):
            r = stream(seed, site_id, kind)
            starts = intervals.poisson_starts(r, t0, t1, rate)
            dur = median_h * 3600.0 * r.lognormal(0.0, EPISODE_SIGMA, len(starts))
            return intervals.merge(starts, starts + dur)

        r = stream(seed, site_id, "grid")
        o_start = intervals.poisson_starts(
            r, t0, t1, region.outages_per_year / outage_weight_mean(), weight=outage_weight,
            max_weight=4.0
        )
        o_end = o_start + region.outage_median_minutes * 60 * r.lognormal(
            0.0, EPISODE_SIGMA, len(o_start)
        )
        o_start, o_end = intervals.merge(o_start, o_end)
        gen_ok = r.uniform(0, 1, len(o_start)) < settings.generator_start_success
        pickup = r.uniform(*GENERATOR_PICKUP_S, len(o_start))
        return cls(
            t0, t1, region, settings, anomaly, humidity,
            episodes("hvac_degraded", settings.hvac_degraded_per_year,
                     settings.hvac_degraded_median_hours),
            episodes("hvac_failed", settings.hvac_failed_per_year,
                     settings.hvac_failed_median_hours),
            (o_start, o_end), gen_ok, pickup,
        )

    def _daily(self, values: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Daily anchors at local noon, linearly interpolated: smooth and step-independent."""
        x = (np.asarray(t) - self.t0) / DAY_S - 0.5
        return np.interp(x, np.arange(len(values)), values)

    def outdoor(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Outdoor temperature (degC) and relative humidity (%)."""
        doy, hour = _day_of_year(t), _local_hour(t)
        seasonal = np.interp(doy, MID_MONTH_DOY, SEASONAL_ANOMALY_C, period=365.25)
        diurnal = np.cos(2 * np.pi * (hour - AFTERNOON_PEAK_H) / 24.0)
        temp = (
            NATIONAL_MEAN_C + self.region.temp_offset_c + self.region.seasonality * seasonal
            + DIURNAL_AMPLITUDE_C * diurnal + self._daily(self.day_anomaly_c, t)
        )
        base_rh = np.interp(doy, MID_MONTH_DOY, MONTHLY_RH_PCT, period=365.25)
        rh = base_rh + self.region.humidity_offset_pct - 12.0 * diurnal + self._daily(
            self.day_humidity, t
        )
        return temp, np.clip(rh, 15.0, 100.0)

    def hvac_state(self, t: np.ndarray) -> np.ndarray:
        """0 normal, 1 degraded, 2 failed."""
        state = intervals.inside(t, *self.degraded).astype(np.int8)
        return np.where(intervals.inside(t, *self.failed), np.int8(2), state)

    def room_target(self, t: np.ndarray, outdoor_c: np.ndarray, state: np.ndarray) -> np.ndarray:
        warm = self.settings.hvac_setpoint_c
        return np.select(
            [state == 2, state == 1],
            [outdoor_c + IT_HEAT_RISE_C,
             warm + ROOM_LEAK_DEGRADED * (outdoor_c + IT_HEAT_RISE_C - warm)],
            warm + ROOM_LEAK_NORMAL * np.maximum(outdoor_c - warm, 0.0),
        )

    def grid_up(self, t: np.ndarray) -> np.ndarray:
        return ~intervals.inside(t, *self.outages)


class RoomSampler:
    """Samples the environment on consecutive chunks of one regular grid, carrying the room's
    thermal lag from chunk to chunk (exact first-order response per step)."""

    def __init__(self, env: SiteEnvironment, step_s: float) -> None:
        self.env = env
        self.alpha = lag_coefficient(step_s, ROOM_TAU_S)
        self._state: np.ndarray | None = None

    def sample(self, t: np.ndarray) -> dict[str, np.ndarray]:
        outdoor, rh = self.env.outdoor(t)
        state = self.env.hvac_state(t)
        target = self.env.room_target(t, outdoor, state)
        if self._state is None:
            self._state = np.array([(1 - self.alpha) * target[0]])
        from scipy.signal import lfilter  # lazy: importing scipy.signal takes ~2.5 s
        room, self._state = lfilter([self.alpha], [1.0, self.alpha - 1.0], target, zi=self._state)
        return {"outdoor_c": outdoor, "humidity_pct": rh, "hvac_state": state, "room_c": room}
