"""The replacement plan on hand-made frames: buckets, the whole-string rule, costs, the
batteries without a usable score, and the monthly end-of-life forecast."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.replacement import (
    Costs,
    CostsError,
    forecast_by_month,
    load_costs,
    plan,
)
from simulator.schema import TS

AS_OF = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
COSTS = Costs.model_validate({
    "currency": {"code": "THB"},
    "models": {"AGM12-120": {"unit_price": 1000.0, "labour_per_block": 100.0},
               "AGM12-100": {"unit_price": 800.0, "labour_per_block": 100.0}},
    "per_string": {"fixed_cost": 500.0},
})
BLOCK = {"AGM12-120": 1100.0, "AGM12-100": 900.0}
FIXED = 500.0


def _batteries() -> pl.DataFrame:
    rows = []
    for site, string, model in (("A", "A-S1", "AGM12-120"), ("A", "A-S2", "AGM12-100"),
                                ("B", "B-S1", "AGM12-120")):
        rows += [{"battery_id": f"{string}-J{k}", "site_id": site, "string_id": string,
                  "position": k, "battery_model": model, "removed_date": None}
                 for k in range(1, 5)]
    # a block taken out of B-S1 earlier: not in service, so neither planned nor unscored
    rows.append({"battery_id": "B-S1-J1-OLD", "site_id": "B", "string_id": "B-S1",
                 "position": 1, "battery_model": "AGM12-120",
                 "removed_date": dt.date(2025, 6, 1)})
    return pl.DataFrame(rows, schema_overrides={"position": pl.Int32, "removed_date": pl.Date})


def _score(battery_id: str, p10, p50, p90, status: str = "ok", as_of=AS_OF) -> dict:
    site = battery_id[0]
    return {"battery_id": battery_id, "site_id": site, "string_id": battery_id[:4],
            "as_of": as_of, "rul_p10_days": p10, "rul_p50_days": p50, "rul_p90_days": p90,
            "risk_level": None, "status": status}


def _predictions() -> pl.DataFrame:
    rows = [
        _score("A-S1-J1", 10.0, 30.0, 60.0),
        _score("A-S1-J2", 50.0, 90.0, 200.0),  # P50 exactly 90: the 90-day bucket
        _score("A-S1-J3", 200.0, 300.0, 500.0),
        _score("A-S1-J4", 400.0, 1000.0, 2000.0),  # not due by either bound
        _score("A-S2-J1", 100.0, 200.0, 400.0),
        _score("A-S2-J2", 300.0, 500.0, 900.0),  # due by its P10 only
        _score("A-S2-J3", None, None, None, "insufficient_data"),
        # A-S2-J4: no score at all
        _score("B-S1-J1", None, None, None, "stale_data"),
        _score("B-S1-J2", 1.0, 10.0, 20.0, as_of=AS_OF - dt.timedelta(days=7)),  # superseded
        _score("B-S1-J2", 500.0, 800.0, 1200.0),
        _score("B-S1-J3", 500.0, 800.0, 1200.0),
        _score("B-S1-J4", 500.0, 800.0, 1200.0),
        _score("B-S1-J1-OLD", 0.0, 0.0, 0.0),  # removed: ignored
    ]
    return pl.DataFrame(rows, schema_overrides={"as_of": TS})


@pytest.fixture
def result():
    return plan(_predictions(), _batteries(), COSTS)


def test_batteries_due_with_both_buckets(result):
    b = result.batteries
    assert b["battery_id"].to_list() == ["A-S1-J1", "A-S1-J2", "A-S2-J1", "A-S1-J3", "A-S2-J2"]
    by_id = {r["battery_id"]: r for r in b.iter_rows(named=True)}
    assert by_id["A-S1-J1"]["due_within"] == 90 and by_id["A-S1-J1"]["due_p10_within"] == 90
    assert by_id["A-S1-J2"]["due_within"] == 90
    assert by_id["A-S1-J3"]["due_within"] == 365 and by_id["A-S1-J3"]["due_p10_within"] == 365
    assert by_id["A-S2-J1"]["due_within"] == 365 and by_id["A-S2-J1"]["due_p10_within"] == 180
    assert by_id["A-S2-J2"]["due_within"] is None and by_id["A-S2-J2"]["due_p10_within"] == 365
    row = by_id["A-S1-J3"]
    assert row["expected_date"] == dt.date(2026, 1, 1) + dt.timedelta(days=300)
    assert row["earliest_date"] == dt.date(2026, 1, 1) + dt.timedelta(days=200)
    assert row["latest_date"] == dt.date(2026, 1, 1) + dt.timedelta(days=500)
    assert by_id["A-S2-J1"]["unit_cost"] == BLOCK["AGM12-100"]
    assert set(b.columns) >= {"site_id", "string_id", "position", "battery_model", "as_of"}


def test_whole_string_rule_and_string_costs(result):
    s = {r["string_id"]: r for r in result.strings.iter_rows(named=True)}
    assert set(s) == {"A-S1", "A-S2"}
    a1, a2 = s["A-S1"], s["A-S2"]
    assert (a1["blocks"], a1["blocks_due"], a1["share_due"]) == (4, 3, 0.75)
    assert a1["whole_string"] and a1["action"] == "replace whole string"
    assert a1["cost"] == 4 * BLOCK["AGM12-120"] + FIXED
    assert a1["earliest_date"] == dt.date(2026, 1, 31)
    # the unscored blocks still count as blocks of their string
    assert (a2["blocks"], a2["blocks_due"], a2["whole_string"]) == (4, 1, False)
    assert a2["action"] == "replace 1 block" and a2["cost"] == BLOCK["AGM12-100"] + FIXED


def test_share_exactly_at_threshold_is_not_whole(result):
    # at 180 days A-S1 has 2 of 4 due: share 0.5 is not "most of a string"
    site_a = result.sites.filter(pl.col("site_id") == "A").row(0, named=True)
    assert site_a["cost_180"] == 2 * BLOCK["AGM12-120"] + FIXED
    lower = plan(_predictions(), _batteries(), COSTS, horizon_days=180,
                 whole_string_share=0.49)
    assert lower.strings.filter(pl.col("string_id") == "A-S1")["whole_string"].item()


def test_site_totals_are_cumulative(result):
    sites = {r["site_id"]: r for r in result.sites.iter_rows(named=True)}
    a, b = sites["A"], sites["B"]
    assert (a["blocks_due_90"], a["blocks_due_180"], a["blocks_due_365"]) == (2, 2, 4)
    assert a["cost_90"] == 2 * BLOCK["AGM12-120"] + FIXED
    assert a["cost_90"] <= a["cost_180"] <= a["cost_365"]
    assert a["cost_365"] == pytest.approx(result.strings["cost"].sum())
    assert a["strings_whole"] == 1 and a["currency"] == "THB"
    assert (b["blocks_due_365"], b["cost_365"], b["strings_whole"]) == (0, 0.0, 0)


def test_unscored_are_counted_not_hidden(result):
    assert result.unscored == 3
    u = {r["battery_id"]: r["status"] for r in result.unscored_batteries.iter_rows(named=True)}
    assert u == {"A-S2-J3": "insufficient_data", "A-S2-J4": "missing", "B-S1-J1": "stale_data"}
    sites = dict(zip(result.sites["site_id"], result.sites["unscored"], strict=True))
    assert sites == {"A": 2, "B": 1}


def test_shorter_horizon_keeps_buckets_below_it():
    short = plan(_predictions(), _batteries(), COSTS, horizon_days=120)
    assert short.buckets_days == (90, 120)
    assert "cost_120" in short.sites.columns and "cost_365" not in short.sites.columns


def test_unpriced_model_is_a_one_line_error():
    batteries = _batteries().with_columns(battery_model=pl.lit("AGM12-200"))
    with pytest.raises(CostsError, match="no price for battery model.*AGM12-200"):
        plan(_predictions(), batteries, COSTS)


def test_monthly_forecast_has_every_month_and_an_ordered_interval():
    in_service = _predictions().filter(pl.col("battery_id") != "B-S1-J1-OLD")
    f = forecast_by_month(in_service)
    assert f.height == 12
    assert f["month"].to_list() == [dt.date(2026, m, 1) for m in range(1, 13)]
    assert (f["low"] <= f["expected"]).all() and (f["expected"] <= f["high"]).all()
    assert (f["cum_low"] <= f["cum_expected"]).all()
    assert (f["cum_expected"] <= f["cum_high"]).all()
    # P50 dates in 2026: A-S1-J1 (Jan), A-S1-J2 (Apr), A-S2-J1 (Jul), A-S1-J3 (Oct)
    assert f["expected"].to_list() == [1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 800), st.floats(0, 400), st.floats(0, 400)),
                min_size=1, max_size=30))
def test_monthly_cumulative_interval_is_ordered(triples):
    rows = [_score(f"A-S1-J{i}", a, a + b, a + b + c) for i, (a, b, c) in enumerate(triples)]
    f = forecast_by_month(pl.DataFrame(rows, schema_overrides={"as_of": TS}))
    assert f.height == 12
    assert (f["low"] <= f["expected"]).all() and (f["expected"] <= f["high"]).all()
    assert (f["cum_low"] <= f["cum_expected"]).all()
    assert (f["cum_expected"] <= f["cum_high"]).all()


def test_shipped_costs_load():
    costs = load_costs()
    assert costs.currency.code == "THB"
    assert {"AGM12-120", "AGM12-100"} <= set(costs.models)


_HEAD = '[currency]\ncode = "THB"\n[models."AGM12-120"]\nlabour_per_block = 1.0\n'
_TAIL = "[per_string]\nfixed_cost = 1.0\n"


@pytest.mark.parametrize(("text", "field"), [
    (_HEAD.replace("labour", "unit_price = -5.0\nlabour") + _TAIL,
     "models.AGM12-120.unit_price"),
    (_HEAD.replace("labour", "unit_price = 5.0\nlabour"), "per_string"),
    (_HEAD.replace('"THB"', '"baht"').replace("labour", "unit_price = 5.0\nlabour") + _TAIL,
     "currency.code"),
])
def test_costs_error_names_file_and_field(tmp_path: Path, text: str, field: str):
    path = tmp_path / "my_costs.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CostsError) as err:
        load_costs(path)
    message = str(err.value)
    assert "\n" not in message and "my_costs.toml" in message and field in message
