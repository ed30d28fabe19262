"""From daily aggregates to feature values: the step shared by the training snapshots,
`rul predict`, the incremental daily store and hourly scoring (split out of models.features).

Input: one row per battery and UTC day (`models.features.daily_aggregates`) on a complete
per-battery day grid. The step runs in four parts:

1. per day: ohmic readings cleaned of bad contacts and their 30-day mean (`per_day`);
2. life accumulators: running totals, maxima and last values since the first observed day
   (`life_accumulators`), optionally continuing a `carry` (the accumulators of the day before);
3. lookback windows (1 to 365 days), defined once (`window_features`) and evaluated either at
   every day (`ROLLING`: training snapshots, backfills) or at each battery's last day only
   (`POINT`: one moment; it reads no more than the longest window, whatever the history's
   length);
4. features from the accumulators, row by row (`life_features`).

Parts 1 and 2 only look back a bounded number of days or through the carry, so a store can keep
their results per day and extend them a day at a time (models.daily_store).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

KEY, DAY = "battery_id", "day"
WINDOWS = {"1d": 1, "7d": 7, "30d": 30, "90d": 90}
# A daily ohmic reading this far off the median of the unit's last OHMIC_MEDIAN_DAYS days is
# a bad contact (they read 30-100 % high, IEEE 1188 connection checks), not wear: a real rise
# is slower (the fastest, two weeks before a short, is +35 % over 14 days: at most ~18 %
# above the trailing median; a runaway's sudden step shows a week late, after its heat)
OHMIC_OUTLIER_TOL, OHMIC_MEDIAN_DAYS = 0.2, 15
R_MEAN_DAYS = 30  # 30 daily readings with 1.5 % repeatability pin the resistance to ~0.3 %
# a year of daily ohmic readings pins the rise rate far better than 90 days of noise
SLOPES = {"r_slope": ("resistance", (30, 90, 180, 365)), "g_slope": ("conductance", (30, 90))}
LONGEST_WINDOW = 365  # days: r_slope_365d, and the capacity measurement means (models.capacity)
SHORT_DAYS = max(WINDOWS.values())  # windows up to this long read every daily column
AGE = "_age"  # POINT: days from a row to its battery's last day

# Running totals over the life; where the day's own value is missing the feature is too
# (`life_features`), as a cumulative sum of a missing value is.
LIFE_SUMS = {
    "life_rows": pl.col("rows"),
    "life_temp_sum": pl.col("temp_sum").fill_null(0),
    "life_hours_above_30": pl.col("hours_above_30").fill_null(0),
    "life_hours_above_35": pl.col("hours_above_35").fill_null(0),
    "life_arrhenius_hours": pl.col("arrhenius_hours").fill_null(0),
    "life_discharge_ah": pl.col("discharge_ah").fill_null(0),
    "life_discharge_days": (pl.col("discharge_ah") > 0).fill_null(False),
}
LIFE_MAXES = {"life_temp_max": pl.col("temp_max"),
              "deepest_discharge_life": pl.col("discharge_depth").fill_null(0)}
_DEEP = pl.col("discharge_x").is_not_null()
LIFE_LASTS = {  # the last value seen (forward fill)
    "last_discharge_min_v": pl.col("discharge_min_v"),
    "discharge_ah_per_v": pl.col("discharge_x"),
    "life_last_discharge_day": pl.when(_DEEP).then(pl.col("day_no")),
    "r_now": pl.col("resistance"),
    "g_now": pl.col("conductance"),
    "r_at_discharge_soh": pl.when(_DEEP).then(pl.col("r_30d")),
}
LIFE_COLUMNS = [*LIFE_SUMS, *LIFE_MAXES, *LIFE_LASTS, "life_first_day"]


def _by_day(e: pl.Expr) -> pl.Expr:
    return e.over(KEY, order_by=DAY)


@dataclass(frozen=True)
class Windows:
    """How a window of the last n days is aggregated: rolling over complete day grids (a
    value at every day) or, with `point`, as a group_by aggregation over each battery's rows
    at its last day (rows carry AGE; missing days need no row)."""

    point: bool

    def sum(self, e: pl.Expr, n: int, min_samples: int = 1) -> pl.Expr:
        if not self.point:
            return _by_day(e.rolling_sum(n, min_samples=min_samples))
        x = pl.when(pl.col(AGE) < n).then(e)
        return pl.when(x.count() >= min_samples).then(x.sum())

    def max(self, e: pl.Expr, n: int) -> pl.Expr:
        if not self.point:
            return _by_day(e.rolling_max(n, min_samples=1))
        return pl.when(pl.col(AGE) < n).then(e).max()

    def min(self, e: pl.Expr, n: int) -> pl.Expr:
        if not self.point:
            return _by_day(e.rolling_min(n, min_samples=1))
        return pl.when(pl.col(AGE) < n).then(e).min()


ROLLING, POINT = Windows(point=False), Windows(point=True)


def day_grid(daily: pl.DataFrame, until: pl.Expr | None = None) -> pl.DataFrame:
    """Complete per-battery day grids from the first to the last day (or to `until`, a
    datetime expression), days without telemetry as rows of nulls with `rows` 0."""
    last = pl.col(DAY).max() if until is None else pl.max_horizontal(pl.col(DAY).max(), until)
    return (
        daily.group_by(KEY)
        .agg(first=pl.col(DAY).min(), last=last)
        .with_columns(**{DAY: pl.datetime_ranges("first", "last", "1d")})
        .explode(DAY)
        .select(KEY, DAY)
        .join(daily, on=[KEY, DAY], how="left")
        .with_columns(pl.col("rows").fill_null(0), day_no=pl.col(DAY).dt.epoch("d"))
        .sort(KEY, DAY)
    )


def clean_ohmics(daily: pl.DataFrame) -> pl.DataFrame:
    """Daily ohmic readings with bad-contact outliers removed (OHMIC_OUTLIER_TOL against the
    trailing median: point in time), resistance and conductance together (one reading)."""
    ref = _by_day(pl.col("resistance").rolling_median(OHMIC_MEDIAN_DAYS, min_samples=1))
    ok = (pl.col("resistance") / ref - 1).abs() <= OHMIC_OUTLIER_TOL
    return daily.with_columns(resistance=pl.when(ok).then("resistance"),
                              conductance=pl.when(ok).then("conductance"))


def rolling_mean(col: str, n: int) -> pl.Expr:
    """Mean of the non-missing values of `col` over the last n days."""
    c = pl.col(col)
    total = c.fill_null(0.0).rolling_sum(n, min_samples=1)
    count = c.is_not_null().cast(pl.Float64).rolling_sum(n, min_samples=1)
    return _by_day(total / pl.when(count > 0).then(count))


def per_day(grid: pl.DataFrame) -> pl.DataFrame:
    """Part 1: cleaned ohmics and their 30-day mean `r_30d`, on a complete day grid."""
    return clean_ohmics(grid).with_columns(r_30d=rolling_mean("resistance", R_MEAN_DAYS))


def life_accumulators(grid: pl.DataFrame, carry: pl.DataFrame | None = None) -> pl.DataFrame:
    """Part 2: LIFE_COLUMNS on a day grid, continuing `carry` (KEY and LIFE_COLUMNS at each
    battery's last day before the grid) where given."""
    if carry is None:
        return grid.with_columns(
            **{k: _by_day(e.cum_sum()) for k, e in LIFE_SUMS.items()},
            **{k: _by_day(e.cum_max().forward_fill()) for k, e in LIFE_MAXES.items()},
            **{k: _by_day(e.forward_fill()) for k, e in LIFE_LASTS.items()},
            life_first_day=pl.col("day_no").min().over(KEY))
    old = {c: f"{c}__carry" for c in LIFE_COLUMNS}
    grid = grid.join(carry.select(KEY, *LIFE_COLUMNS).rename(old), on=KEY, how="left")
    return grid.with_columns(
        **{k: _by_day(e.cum_sum()) + pl.col(old[k]).fill_null(0) for k, e in LIFE_SUMS.items()},
        **{k: pl.max_horizontal(_by_day(e.cum_max().forward_fill()), old[k])
           for k, e in LIFE_MAXES.items()},
        **{k: _by_day(e.forward_fill()).fill_null(pl.col(old[k])) for k, e in LIFE_LASTS.items()},
        life_first_day=pl.coalesce(old["life_first_day"], pl.col("day_no").min().over(KEY)),
    ).drop(old.values())


def _slope(w: Windows, col: str, n: int) -> pl.Expr:
    """Least-squares slope per day of `col` over the last n days (window sums, vectorised)."""
    x, y = pl.col("day_no").cast(pl.Float64), pl.col(col)
    ok = y.is_not_null()
    xs = pl.when(ok).then(x)
    cnt, sx, sy, sxy, sxx = (w.sum(e, n, min_samples=3)
                             for e in (ok.cast(pl.Float64), xs, y, xs * y, xs * xs))
    return (cnt * sxy - sx * sy) / (cnt * sxx - sx * sx)


def window_features(w: Windows, lengths: range | None = None) -> dict[str, pl.Expr]:
    """Part 3: the lookback-window features, one definition for both evaluators (only those
    whose window length is in `lengths`, if given)."""
    out: list[tuple[str, int, pl.Expr]] = []
    for name, n in WINDOWS.items():
        out.append((f"temp_mean_{name}", n,
                    w.sum(pl.col("temp_sum"), n) / w.sum(pl.col("rows"), n)))
        out.append((f"temp_max_{name}", n, w.max(pl.col("temp_max"), n)))
        out += [(f"{c}_{name}", n, w.sum(pl.col(c), n))
                for c in ("hours_above_30", "hours_above_35", "arrhenius_hours")]
    out.append(("float_dev_30d", 30,
                w.sum(pl.col("float_dev_sum"), 30) / w.sum(pl.col("float_rows"), 30)))
    out.append(("float_current_7d", 7,
                w.sum(pl.col("float_current_sum"), 7) / w.sum(pl.col("float_rows"), 7)))
    for prefix, (col, days) in SLOPES.items():
        out += [(f"{prefix}_{n}d", n, _slope(w, col, n)) for n in days]
    return {name: e for name, n, e in out if lengths is None or n in lengths}


def life_features() -> dict[str, pl.Expr]:
    """Part 4: features from the life accumulators, row by row."""
    def where(value: str, acc: str) -> pl.Expr:
        return pl.when(pl.col(value).is_not_null()).then(pl.col(acc))
    return {
        "temp_mean_life": where("temp_sum", "life_temp_sum") / pl.col("life_rows"),
        "temp_max_life": where("temp_max", "life_temp_max"),
        **{f"{c}_life": where(c, f"life_{c}")
           for c in ("hours_above_30", "hours_above_35", "arrhenius_hours", "discharge_ah")},
        "observed_rows": pl.col("life_rows"),
        "discharge_days_life": where("discharge_ah", "life_discharge_days"),
        "discharge_soh_age_days": pl.col("day_no") - pl.col("life_last_discharge_day") + 1,
        "observed_days": (pl.col("day_no") - pl.col("life_first_day") + 1).cast(pl.UInt32),
    }


def with_window_features(grid: pl.DataFrame) -> pl.DataFrame:
    """Parts 3-4 at every day of grids that already carry parts 1-2; `ts` is the moment each
    day's features are known (the next 00:00 UTC)."""
    return grid.with_columns(**window_features(ROLLING)).with_columns(
        **life_features(), ts=pl.col(DAY) + pl.duration(days=1))


def rolled(daily: pl.DataFrame) -> pl.DataFrame:
    """The feature values of every battery at every day of its grid, from daily aggregates."""
    return with_window_features(life_accumulators(per_day(day_grid(daily))))


def point_features(short: pl.LazyFrame, long: pl.LazyFrame, latest: pl.DataFrame,
                   as_of: dt.datetime) -> pl.DataFrame:
    """Feature values of each battery at its last day, ts = `as_of`: `latest` holds that day's
    row with parts 1-2 done; `short` the daily rows of its last SHORT_DAYS days at least, `long`
    the cleaned resistance of its last LONGEST_WINDOW (other days are ignored, a missing one
    counts as a day without telemetry). Windows are aggregated in streaming passes: memory
    grows with the batteries, not with the days."""
    last = latest.select(KEY, _last=pl.col("day_no")).lazy()

    def aggregate(rows: pl.LazyFrame, lengths: range) -> pl.DataFrame:
        rows = rows.join(last, on=KEY).filter(pl.col("day_no") <= pl.col("_last"))
        return rows.with_columns(**{AGE: pl.col("_last") - pl.col("day_no")}).group_by(KEY).agg(
            **window_features(POINT, lengths)).collect(engine="streaming")
    windows = aggregate(short, range(SHORT_DAYS + 1)).join(
        aggregate(long, range(SHORT_DAYS + 1, LONGEST_WINDOW + 1)), on=KEY, how="full",
        coalesce=True)
    return latest.join(windows, on=KEY, how="left").with_columns(
        **life_features(), ts=pl.lit(as_of).cast(pl.Datetime("us", "UTC")))
