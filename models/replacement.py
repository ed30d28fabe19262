"""The replacement plan a manager budgets from: which blocks and strings to replace within a
horizon, when, and what it costs, read from the latest RUL scores.

Why it is built this way:
- Dates come from the scores' own quantiles: expected = as_of + P50 (what to budget), earliest
  = as_of + P10 (the pessimistic bound the RUL alerts use), latest = as_of + P90. Buckets and
  costs go by the P50; `due_p10_within` shows what the pessimistic bound would pull in, and a
  block due by its P10 alone is listed too (with no P50 bucket), so a planner sees both.
- A string is one series circuit: when most of its blocks are due, swapping them one by one
  leaves old and new blocks on one current (the weakest ends every discharge) and pays the
  call-out again and again, so past `whole_string_share` the plan suggests the whole string.
- Each horizon (90 within 180 within 365 days, cumulative) is costed as one visit per string
  with work in it: its blocks (or the whole string) plus the per-string fixed cost once.
- A battery with no usable score (insufficient_data, stale_data, or no score at all) is
  counted and listed, never given a made-up date (DOMAIN §7).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.predict import OK, QUANTILES

COSTS_PATH = Path(__file__).with_name("replacement_costs.toml")
# DOMAIN §5 / simulator/thresholds.toml [rul]: P10 < 90 d critical, < 180 d warning; 365 d is
# the budget year. A shorter horizon keeps the buckets below it and ends at itself.
BUCKETS_DAYS = (90, 180, 365)
MISSING = "missing"  # in service but no score row (or an "ok" row without numbers)
P10, P50, P90 = QUANTILES
cl = pl.col


class CostsError(ValueError):
    """A costs file that cannot be used; the message is one line meant for the user."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Currency(_Strict):
    code: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. THB")


class ModelPrice(_Strict):
    unit_price: float = Field(ge=0, description="One block, delivered")
    labour_per_block: float = Field(ge=0, description="Swapping one block")


class PerString(_Strict):
    fixed_cost: float = Field(ge=0, description="Call-out, disposal, commissioning test")


class Costs(_Strict):
    """Replacement prices: per block by battery model, plus a fixed cost per string visit."""

    currency: Currency
    models: dict[str, ModelPrice] = Field(min_length=1)
    per_string: PerString

    def block_costs(self) -> pl.DataFrame:
        """battery_model -> unit_cost (price plus labour of one block)."""
        return pl.DataFrame(
            {"battery_model": list(self.models),
             "unit_cost": [m.unit_price + m.labour_per_block for m in self.models.values()]},
            schema={"battery_model": pl.String, "unit_cost": pl.Float64})

    def with_unit_cost(self, frame: pl.DataFrame) -> pl.DataFrame:
        """`frame` with its blocks' unit_cost; a model with no price is a one-line error."""
        out = frame.join(self.block_costs(), on="battery_model", how="left")
        unknown = out.filter(cl("unit_cost").is_null())["battery_model"].unique().sort()
        if len(unknown):
            raise CostsError(f"replacement costs: models: no price for battery model(s) "
                             f"{', '.join(map(repr, unknown.to_list()))}")
        return out


def load_costs(path: Path | None = None) -> Costs:
    """Read and validate a costs TOML file (the shipped illustrative defaults when None)."""
    path = Path(path) if path is not None else COSTS_PATH
    try:
        return Costs.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise CostsError(f"{path}: file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CostsError(f"{path}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(part) for part in err["loc"])
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        raise CostsError(f"{path}: {loc + ': ' if loc else ''}{msg}") from None


@dataclass(frozen=True)
class Plan:
    """The plan: due blocks, per-string actions, per-site totals, and what could not be scored.

    batteries: battery_id, site_id, string_id, position, battery_model, as_of, expected_date,
      earliest_date, latest_date, rul_p10/p50/p90_days, due_within, due_p10_within, unit_cost
    strings: site_id, string_id, battery_model, blocks, blocks_due, share_due, whole_string,
      action, earliest_date, cost (at the horizon, by the P50)
    sites: site_id, blocks_due_<b>, strings_whole, cost_<b> per bucket b, unscored, currency
    unscored_batteries: battery_id, site_id, string_id, status (no usable score)
    """

    batteries: pl.DataFrame
    strings: pl.DataFrame
    sites: pl.DataFrame
    unscored: int
    unscored_batteries: pl.DataFrame
    currency: str
    horizon_days: int
    buckets_days: tuple[int, ...]


def buckets(horizon_days: int) -> tuple[int, ...]:
    """The cumulative buckets up to `horizon_days` (90/180/365 by default)."""
    if horizon_days <= 0:
        raise ValueError(f"horizon_days must be positive, got {horizon_days}")
    return tuple(b for b in BUCKETS_DAYS if b < horizon_days) + (int(horizon_days),)


def _bucket(column: str, edges: tuple[int, ...]) -> pl.Expr:
    """Smallest bucket holding the value, null beyond the last one."""
    expr = pl.lit(None, dtype=pl.Int32)
    for edge in reversed(edges):
        expr = pl.when(cl(column) <= edge).then(pl.lit(edge, dtype=pl.Int32)).otherwise(expr)
    return expr


def _require(frame: pl.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {', '.join(missing)}")


def latest_scores(predictions: pl.DataFrame) -> pl.DataFrame:
    """One row per battery, its latest as_of; numbers only where status is ok."""
    _require(predictions, "predictions", ("battery_id", "as_of", *QUANTILES, "status"))
    latest = predictions.sort("as_of").unique("battery_id", keep="last", maintain_order=True)
    usable = (cl("status") == OK) & pl.all_horizontal([cl(q).is_not_null() for q in QUANTILES])
    return latest.with_columns(usable=usable.fill_null(False)).with_columns(
        [pl.when(cl("usable")).then(cl(q).clip(lower_bound=0.0)).alias(q) for q in QUANTILES])


def in_service(batteries: pl.DataFrame) -> pl.DataFrame:
    """Batteries still in their string (no removed_date, when the table has that column)."""
    _require(batteries, "batteries",
             ("battery_id", "site_id", "string_id", "position", "battery_model"))
    if "removed_date" in batteries.columns:
        batteries = batteries.filter(cl("removed_date").is_null())
    return batteries.select("battery_id", "site_id", "string_id", "position", "battery_model")


def plan(predictions: pl.DataFrame, batteries: pl.DataFrame, costs: Costs, *,
         horizon_days: int = 365, whole_string_share: float = 0.5) -> Plan:
    """The replacement plan of every battery in service within `horizon_days` of its score."""
    edges = buckets(horizon_days)
    if not 0.0 <= whole_string_share <= 1.0:
        raise ValueError(f"whole_string_share must be within 0..1, got {whole_string_share}")
    scores = latest_scores(predictions).select("battery_id", "as_of", *QUANTILES, "status",
                                               "usable")
    fleet = costs.with_unit_cost(in_service(batteries)).join(scores, on="battery_id",
                                                             how="left")
    fleet = fleet.with_columns(
        cl("usable").fill_null(False),
        pl.when(cl("status").is_null() | ((cl("status") == OK) & ~cl("usable").fill_null(False)))
        .then(pl.lit(MISSING)).otherwise(cl("status")).alias("status"))
    unscored = fleet.filter(~cl("usable")).select("battery_id", "site_id", "string_id",
                                                  "status").sort("battery_id")

    scored = fleet.filter(cl("usable"))
    due_rows = scored.filter(cl(P10) <= horizon_days).with_columns(
        expected_date=(cl("as_of") + pl.duration(days=cl(P50))).dt.date(),
        earliest_date=(cl("as_of") + pl.duration(days=cl(P10))).dt.date(),
        latest_date=(cl("as_of") + pl.duration(days=cl(P90))).dt.date(),
        due_within=_bucket(P50, edges), due_p10_within=_bucket(P10, edges),
    ).select("battery_id", "site_id", "string_id", "position", "battery_model", "as_of",
             "expected_date", "earliest_date", "latest_date", *QUANTILES, "due_within",
             "due_p10_within", "unit_cost").sort("expected_date", "earliest_date", "battery_id")

    strings = _strings(fleet, due_rows, edges, costs.per_string.fixed_cost, whole_string_share)
    last = edges[-1]
    string_frame = strings.filter(cl(f"due_{last}") > 0).select(
        "site_id", "string_id", "battery_model", "blocks",
        cl(f"due_{last}").alias("blocks_due"), cl(f"share_{last}").alias("share_due"),
        cl(f"whole_{last}").alias("whole_string"),
        pl.when(cl(f"whole_{last}")).then(pl.lit("replace whole string"))
        .when(cl(f"due_{last}") == 1).then(pl.lit("replace 1 block"))
        .otherwise(pl.format("replace {} blocks", cl(f"due_{last}"))).alias("action"),
        "earliest_date", cl(f"cost_{last}").alias("cost"),
    ).sort("earliest_date", "string_id")

    per_site = strings.group_by("site_id").agg(
        *[cl(f"due_{b}").sum().cast(pl.Int64).alias(f"blocks_due_{b}") for b in edges],
        cl(f"whole_{last}").sum().cast(pl.Int64).alias("strings_whole"),
        *[cl(f"cost_{b}").sum().alias(f"cost_{b}") for b in edges])
    site_unscored = unscored.group_by("site_id").agg(unscored=pl.len().cast(pl.Int64))
    sites = (fleet.select("site_id").unique().join(per_site, on="site_id", how="left")
             .join(site_unscored, on="site_id", how="left").fill_null(0)
             .with_columns(currency=pl.lit(costs.currency.code)).sort("site_id"))
    return Plan(due_rows, string_frame, sites, unscored.height, unscored,
                costs.currency.code, int(horizon_days), edges)


def _strings(fleet: pl.DataFrame, due: pl.DataFrame, edges: tuple[int, ...], fixed: float,
             whole_share: float) -> pl.DataFrame:
    """Per string and bucket: blocks due by the P50, whole-string decision and cost."""
    counted = fleet.join(due.select("battery_id", "due_within", "expected_date"),
                         on="battery_id", how="left")
    agg = counted.group_by("site_id", "string_id").agg(
        *[(cl("due_within") <= b).sum().cast(pl.Int64).alias(f"due_{b}") for b in edges],
        *[cl("unit_cost").filter(cl("due_within") <= b).sum().alias(f"due_cost_{b}")
          for b in edges],
        blocks=pl.len().cast(pl.Int64),
        battery_model=cl("battery_model").unique().sort().str.join("+"),
        string_cost=cl("unit_cost").sum(),
        earliest_date=cl("expected_date").filter(cl("due_within").is_not_null()).min())
    return agg.with_columns(
        *[(cl(f"due_{b}") / cl("blocks")).alias(f"share_{b}") for b in edges],
        *[(cl(f"due_{b}") / cl("blocks") > whole_share).alias(f"whole_{b}") for b in edges],
    ).with_columns(
        *[pl.when(cl(f"due_{b}") == 0).then(0.0)
          .when(cl(f"whole_{b}")).then(cl("string_cost") + fixed)
          .otherwise(cl(f"due_cost_{b}") + fixed).alias(f"cost_{b}") for b in edges])


def forecast_by_month(predictions: pl.DataFrame, months: int = 12) -> pl.DataFrame:
    """Batteries reaching end of life per calendar month, from the month of the latest score;
    `predictions` are the scores of the batteries in service (as the scoring writes them).

    expected counts by the P50 date. Per month the counts by the P10, P50 and P90 dates are not
    ordered (moving every date earlier empties a late month as it fills an early one), so
    `low`/`high` are the fewest/most of those three counts; the cumulative columns are ordered
    by construction: cum_low by the P90 dates <= cum_expected <= cum_high by the P10 dates.
    A date before the first month (an older score already past it) counts in the first month.
    """
    if months < 1:
        raise ValueError(f"months must be at least 1, got {months}")
    scores = latest_scores(predictions)
    if scores.is_empty():
        raise ValueError("predictions: no rows to forecast from")
    start = scores["as_of"].max().date().replace(day=1)
    first = start.year * 12 + start.month - 1
    ok = scores.filter(cl("usable"))
    year, month0 = divmod(first + months - 1, 12)
    frame = pl.DataFrame({
        "idx": pl.int_range(0, months, eager=True),
        "month": pl.date_range(start, dt.date(year, month0 + 1, 1), "1mo", eager=True)})
    for q, name in ((P50, "expected"), (P10, "by_p10"), (P90, "by_p90")):
        date = (cl("as_of") + pl.duration(days=cl(q))).dt.date()
        idx = (date.dt.year() * 12 + date.dt.month() - 1 - first).clip(lower_bound=0)
        counts = ok.select(idx=idx.cast(pl.Int64)).group_by("idx").agg(pl.len().alias(name))
        frame = frame.join(counts, on="idx", how="left")
    frame = frame.fill_null(0).with_columns(cl("expected", "by_p10", "by_p90").cast(pl.Int64))
    return frame.sort("idx").select(
        "month", "expected",
        low=pl.min_horizontal("expected", "by_p10", "by_p90"),
        high=pl.max_horizontal("expected", "by_p10", "by_p90"),
        cum_expected=cl("expected").cum_sum(), cum_low=cl("by_p90").cum_sum(),
        cum_high=cl("by_p10").cum_sum())
