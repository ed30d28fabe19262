"""The model's accuracy targets (issue 7, `models.targets`) in words a manager reads, next to
the promotion: a champion is promoted when it beats the baselines (or the previous champion),
which says nothing about whether it meets its targets, so a green "promoted" alone read as
"all is well" while most targets were missed. Green only when promoted and every target met,
amber when promoted with targets missed."""

from __future__ import annotations

import math

import polars as pl

from dashboards.format import esc, number, percent

# target name (models.targets.TARGETS): what it measures, and how its figures are written
WORDS = {
    "mae_0_180": "average forecast error for batteries within 180 days of end of life",
    "gain_over_baseline": "improvement over the best simple baseline (forecast error)",
    "coverage": "share of true lives inside the P10–P90 range, whole fleet",
    "coverage_site_min": "share of true lives inside the P10–P90 range, lowest site",
    "coverage_site_max": "share of true lives inside the P10–P90 range, highest site",
    "training_seconds": "time to train and evaluate",
}
DAYS, SHARE, MINUTES = "days", "share", "minutes"
UNITS = {"mae_0_180": DAYS, "gain_over_baseline": SHARE, "coverage": SHARE,
         "coverage_site_min": SHARE, "coverage_site_max": SHARE, "training_seconds": MINUTES}


def figure(value: float, unit: str | None, decimals: int = 1) -> str:
    """A target's figure with its unit: days, shares as percent, seconds as minutes (the
    target reads "10 min", not "600")."""
    if value is None or math.isnan(value):
        return "not measured"
    if unit == DAYS:
        return number(value, decimals, "d")
    if unit == SHARE:
        return percent(value, decimals)
    if unit == MINUTES:
        return number(value / 60.0, decimals, "min")
    return number(value, 3)


def goal(low: float, high: float, unit: str | None) -> str:
    """The allowed range in words: at most, at least, or between (goals are round figures)."""
    def shown(v: float) -> str:
        return figure(v, unit, 0)
    if low <= 0:
        return f"at most {shown(high)}"
    if not math.isfinite(high):
        return f"at least {shown(low)}"
    return f"between {shown(low)} and {shown(high)}"


def missed(metrics: dict) -> list[str]:
    """Each missed target as "<what>: <measured> (goal <range>)"."""
    from models.targets import check_targets

    return [f"{WORDS.get(t['target'], t['text'])}: {figure(t['measured'], UNITS.get(t['target']))}"
            f" (goal {goal(t['low'], t['high'], UNITS.get(t['target']))})"
            for t in check_targets(metrics).iter_rows(named=True) if not t["met"]]


def promotion(decision: str, reason: str | None, metrics: dict) -> tuple[str, str, str]:
    """(card note, card colour class, HTML sentence) for the promotion: the decision and the
    targets' state together."""
    from models.targets import TARGETS

    misses = missed(metrics)
    if decision != "promoted":
        return "not promoted", "warn", (f'<p class="warn-box" id="promotion-state">Not promoted: '
                                        f'{esc(reason or "no reason recorded")}.</p>')
    # what the rule checked, in words, only as the recorded reason states it
    # (models.metrics.promotion_decision)
    reason = reason or ""
    rule = (" (beats every baseline)" if "beats every baseline" in reason else
            " (beats the previous champion)" if "beats champion" in reason else "")
    if not misses:
        sentence = (f'<p class="note" id="promotion-state">Passes the promotion rule{rule} '
                    f"and meets all {len(TARGETS)} accuracy targets.</p>")
        return f"meets all {len(TARGETS)} accuracy targets", "ok", sentence
    items = "".join(f"<li>{esc(m)}</li>" for m in misses)
    sentence = (f'<div class="warn-box" id="promotion-state">Passes the promotion rule{rule};'
                f" misses these accuracy targets:<ul>{items}</ul></div>")
    return f"misses {len(misses)} of {len(TARGETS)} accuracy targets", "warn", sentence


def table(metrics: dict) -> str:
    """Every target with its measured figure, its goal and whether it is met."""
    from models.targets import check_targets

    met = {True: '<span class="badge ok">met</span>',
           False: '<span class="badge crit">missed</span>'}
    frame: pl.DataFrame = check_targets(metrics)
    rows = "".join(
        f'<tr><td>{esc(WORDS.get(t["target"], t["text"]))}</td>'
        f'<td class="num">{esc(figure(t["measured"], UNITS.get(t["target"])))}</td>'
        f'<td>{esc(goal(t["low"], t["high"], UNITS.get(t["target"])))}</td>'
        f'<td>{met[t["met"]]}</td></tr>' for t in frame.iter_rows(named=True))
    return ('<table class="grid model-targets" id="model-targets"><thead><tr><th>Target '
            f"(issue 7)</th><th>Measured</th><th>Goal</th><th>Met</th></tr></thead><tbody>{rows}"
            "</tbody></table>")
