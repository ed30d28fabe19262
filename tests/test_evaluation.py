"""The honest end-of-life evaluation on hand-made tables: zero-free RUL bins, detection of
blocks already past end of life, string-bootstrap intervals, and predictions attached to the
evaluation by key. No training here: every expected value is worked out by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

import models.train as train_module
from models.baselines import Baseline
from models.dataset import LABEL
from models.detection import detection_metrics, flag_critical
from models.metrics import regression_metrics
from models.uncertainty import string_bootstrap
from simulator.thresholds import load_thresholds

DAY0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
SNAPSHOT_DAYS = [3, 10, 17, 24, 31]


def _day(d: int) -> dt.datetime:
    return DAY0 + dt.timedelta(days=d)


def test_zero_free_bins_leave_out_the_already_failed_rows():
    y = np.array([0, 0, 0, 50, 150, 300, 500])
    p = np.array([0, 0, 30, 70, 100, 240, 600])  # the failed rows are easy: two exact
    m = regression_metrics(y, p)
    assert m["model.mae_rul0"] == pytest.approx(10.0) and m["model.n_rul0"] == 3.0
    assert m["model.mae_bin_0_90"] == pytest.approx(20.0)
    assert m["model.mae_bin_90_180"] == pytest.approx(50.0)
    assert m["model.mae_bin_180_365"] == pytest.approx(60.0)
    assert m["model.mae_bin_gt365"] == pytest.approx(100.0)
    assert m["model.mae_0_180"] == pytest.approx(35.0) and m["model.n_0_180"] == 2.0
    assert m["model.mae_0_365"] == pytest.approx(130 / 3) and m["model.n_0_365"] == 3.0
    assert m["model.mae_le180"] == pytest.approx(100 / 5)  # inclusive: flattered to 20
    assert m["model.mae_le365"] == pytest.approx(160 / 6)
    assert np.isnan(regression_metrics(np.array([0.0, 400.0]), np.array([5.0, 400.0]))
                    ["model.mae_0_180"])  # only failed and long-lived rows: NaN, not 0


# per block: true SoH on day d, and the P10 at the snapshots of SNAPSHOT_DAYS
BLOCKS = {
    "A": (lambda d: 84.5 - 0.5 * d, [300, 200, 150, 60, 30]),  # crosses day 10, flagged 24
    "B": (lambda d: 89.5 - 0.5 * d, [50, 200, 200, 200, 200]),  # crosses 20, flagged on day 3
    "C": (lambda d: 87.0 - 0.5 * d, [500] * 5),  # crosses day 15, never flagged
    "D": (lambda d: 75.0, [10] * 5),  # failed before the window: not a crossing
    "E": (lambda d: 95.0, [500, 80, 500, 500, 500]),  # healthy, one false alarm on day 10
    "F": (lambda d: 97.0 - 0.5 * d, [500] * 5),  # crosses day 35, after the last snapshot
}


def _detection_tables() -> tuple[pl.DataFrame, pl.DataFrame]:
    truth = pl.DataFrame([{"battery_id": b, "ts": _day(d), "soh_pct": soh(d)}
                          for b, (soh, _) in BLOCKS.items() for d in range(41)])
    evaluation = pl.DataFrame([{"battery_id": b, "ts": _day(d), "rul_p10_days": float(p10),
                                "soh_pct": soh(d)}
                               for b, (soh, p10s) in BLOCKS.items()
                               for d, p10 in zip(SNAPSHOT_DAYS, p10s, strict=True)])
    return evaluation, truth


def test_detection_metrics_on_a_synthetic_fleet():
    evaluation, truth = _detection_tables()
    m = detection_metrics(evaluation.sample(fraction=1.0, shuffle=True, seed=3), truth,
                          load_thresholds())
    # SoH < 80 %: A on days 10-31 (flagged 24, 31), B on 24, 31, C on 17-31, D always (flagged)
    assert m["detection.n_below80"] == 14.0
    assert m["detection.flagged_share_below80"] == pytest.approx(7 / 14)
    # SoH > 90 %: E's five snapshots (one flagged) and F's first two
    assert m["detection.n_above90"] == 7.0
    assert m["detection.false_alarm_share_above90"] == pytest.approx(1 / 7)
    # crossings in the scored period (days 3-31): A (day 10), B (20), C (15)
    assert m["detection.n_crossing"] == 3.0
    assert m["detection.never_flagged"] == 1.0  # C
    assert m["detection.flagged_by_crossing"] == 1.0  # B, 17 days ahead
    assert m["detection.lead_days_median"] == pytest.approx(17.0)
    # delays: A 24 - 10 = 14, B 0 (flagged first)
    assert m["detection.delay_days_median"] == pytest.approx(7.0)
    assert m["detection.delay_days_p90"] == pytest.approx(0.9 * 14.0)


def test_detection_without_failed_or_crossing_blocks_is_nan_not_zero():
    evaluation, truth = _detection_tables()
    healthy = evaluation.filter(pl.col("battery_id") == "E")
    m = detection_metrics(healthy, truth, load_thresholds())
    assert m["detection.n_below80"] == 0.0 and np.isnan(m["detection.flagged_share_below80"])
    assert m["detection.n_crossing"] == 0.0 and np.isnan(m["detection.delay_days_median"])


def test_the_critical_flag_is_the_risk_level_rule():
    thresholds = load_thresholds()
    p10 = np.array([0.0, 89.9, 90.0, 150.0, 179.9, 400.0])
    assert flag_critical(p10, thresholds).tolist() == [
        thresholds.risk_level(v) == "critical" for v in p10]


def _bootstrap_table(errors_by_string: dict[str, list[float]]) -> pl.DataFrame:
    rows = []
    for s, errors in errors_by_string.items():
        for i, e in enumerate(errors):
            y = [40.0, 120.0, 300.0, 800.0, 0.0][i % 5]
            rows.append({"string_id": s, LABEL: y, "rul_p50_days": y + e,
                         "rul_p10_days": y - 1.0, "rul_p90_days": y + 30.0 - e,
                         "baseline_a_days": y + 2 * e + 5, "baseline_b_days": y + 3 * e})
    return pl.DataFrame(rows)


def test_bootstrap_intervals_contain_the_point_estimate():
    rng = np.random.default_rng(0)
    table = _bootstrap_table({f"S{i}": list(rng.uniform(0, 60, 10)) for i in range(12)})
    ci = string_bootstrap(table, ["baseline_a_days", "baseline_b_days"], seed=1)
    names = ["model.mae_bin_0_90", "model.mae_bin_90_180", "model.mae_0_180",
             "model.mae_0_365", "model.mae", "model.coverage", "best_baseline.mae_0_180",
             "model.gain_0_180"]
    for name in names:
        lo, point, hi = (ci[f"ci.{name}.{b}"] for b in ("lo", "point", "hi"))
        assert lo <= point <= hi and lo < hi, name
    y, p50 = table[LABEL].to_numpy(), table["rul_p50_days"].to_numpy()
    short = (y > 0) & (y <= 180)
    assert ci["ci.model.mae_0_180.point"] == pytest.approx(np.abs(p50 - y)[short].mean())
    assert ci["ci.model.mae_0_180.point"] == pytest.approx(
        regression_metrics(y, p50)["model.mae_0_180"])
    best = min(np.abs(table[c].to_numpy() - y)[short].mean()
               for c in ("baseline_a_days", "baseline_b_days"))
    assert ci["ci.best_baseline.mae_0_180.point"] == pytest.approx(best)
    assert ci["ci.model.gain_0_180.point"] == pytest.approx(
        1 - ci["ci.model.mae_0_180.point"] / best)
    assert ci["ci.strings"] == 12.0 and ci["ci.resamples"] == 1000.0
    again = string_bootstrap(table, ["baseline_a_days", "baseline_b_days"], seed=1)
    assert again == ci  # seeded: repeatable
    assert string_bootstrap(table, [], seed=2)["ci.model.mae.lo"] != ci["ci.model.mae.lo"]
    assert "ci.best_baseline.mae_0_180.lo" not in string_bootstrap(table, [], seed=1)


def test_a_single_string_gives_an_interval_of_zero_width():
    table = _bootstrap_table({"only": [5.0, 20.0, 7.0, 1.0, 3.0, 9.0]})
    ci = string_bootstrap(table, ["baseline_a_days"], seed=0)
    for key in [k for k in ci if k.endswith(".lo")]:
        point, hi = ci[key.replace(".lo", ".point")], ci[key.replace(".lo", ".hi")]
        assert ci[key] == pytest.approx(point) and hi == pytest.approx(point), key


def test_bootstrap_resamples_whole_strings_not_rows():
    """Two strings with errors of 10 and 30 days on every row: a replicate draws both, one
    twice or the other twice, so its MAE is 10, 20 or 30, and the 90 % interval spans 10-30.
    Resampling the 200 rows instead would pin it near 20."""
    table = _bootstrap_table({"S1": [10.0] * 100, "S2": [30.0] * 100})
    ci = string_bootstrap(table, [], seed=0)
    assert (ci["ci.model.mae.lo"], ci["ci.model.mae.hi"]) == pytest.approx((10.0, 30.0))


class _EchoModel:
    """Predicts from `age_days` and returns its rows in reverse order, as a model may."""

    laws = None  # read only by derive_features, replaced below

    def predict(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.reverse().select("battery_id", "ts", rul_p10_days=pl.col("age_days") - 1,
                                      rul_p50_days=pl.col("age_days"),
                                      rul_p90_days=pl.col("age_days") + 1)


def test_baseline_and_oracle_predictions_are_attached_by_key(monkeypatch):
    ids = ["b1", "b2", "b3"]
    test = pl.DataFrame({
        "battery_id": [b for b in ids for _ in (0, 1)], "site_id": "X",
        "string_id": "X-S1", "ts": [_day(d) for _ in ids for d in (7, 14)],
        LABEL: [100.0, 93.0, 50.0, 43.0, 0.0, 0.0], "temp_mean_90d": 25.0,
        "age_days": [10.0, 17.0, 20.0, 27.0, 30.0, 37.0]})
    truth = pl.DataFrame({"battery_id": [b for b in ids for _ in range(21)],
                          "ts": [_day(d) for _ in ids for d in range(21)],
                          "soh_pct": [90.0 - i - 0.1 * d for i in range(3) for d in range(21)]})
    # a feature step that reorders rows, baselines and an oracle that echo each row's age
    monkeypatch.setattr(train_module, "derive_features",
                        lambda f, laws: f.sample(fraction=1.0, shuffle=True, seed=5))
    monkeypatch.setattr(train_module, "fit_baselines", lambda *a: [
        Baseline("echo", lambda f: f["age_days"].to_numpy() + 1000.0)])
    monkeypatch.setattr(train_module, "oracle_rul",
                        lambda frame, truth: frame["age_days"].to_numpy() * 2.0)
    ev = train_module.evaluation_table(_EchoModel(), test, test, truth, [], [])
    assert ev.select("battery_id", "ts").equals(test.select("battery_id", "ts"))
    age = test["age_days"]
    assert ev["rul_p50_days"].to_list() == age.to_list()
    assert ev["baseline_echo_days"].to_list() == (age + 1000.0).to_list()
    assert ev["oracle_days"].to_list() == (age * 2.0).to_list()
    expected_soh = [90.0 - i - 0.1 * d for i in range(3) for d in (7, 14)]
    assert ev["soh_pct"].to_list() == pytest.approx(expected_soh)
