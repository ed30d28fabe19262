"""Model page, for whoever answers "can we trust the forecast?": the champion and why it was
promoted, its test metrics against the baselines and the oracle (the README's table, read from
the run, never restated), calibration of its P10-P90 interval, what the latest scores used,
and the latest drift report. The registry read imports MLflow (seconds, once per server), so
the champion's part fills in after the page is shown; the rest renders at once."""

from __future__ import annotations

import asyncio
import functools
import math
import re
from pathlib import Path

import holoviews as hv
import panel as pn
import polars as pl

from dashboards.exports import download_buttons
from dashboards.format import esc, html, local, stat_card
from dashboards.pages import model_targets

NO_MODEL = "No champion model yet: run `make pipeline`."
NO_DRIFT = ("No drift report yet: the daily drift schedule writes one (Dagster, "
            "daily_drift_report).")
PREDICTORS = (("model", "model"), ("model_telemetry_only", "model, telemetry only"),
              ("baseline.linear", "baseline: linear (ridge)"),
              ("baseline.trend", "baseline: resistance trend"),
              ("baseline.arrhenius", "baseline: Arrhenius life"),
              ("baseline.calendar", "baseline: calendar"), ("baseline.mean", "baseline: mean"),
              ("oracle", "oracle (true capacity, evaluation only)"),
              ("cv", "3-fold CV by battery (training batteries)"),
              ("loso", "leave-one-site-out"))
# metric: (column title, decimals); MAE in days by true-RUL bin, as models/metrics.py names them
COLUMNS = {"mae": ("all", 1), "r2": ("R²", 3), "mae_bin_0_90": ("(0, 90]", 1),
           "mae_bin_90_180": ("(90, 180]", 1), "mae_0_180": ("(0, 180]", 1),
           "mae_bin_180_365": ("(180, 365]", 1), "mae_0_365": ("(0, 365]", 1),
           "mae_bin_gt365": ("> 365", 1), "late_share": ("late (P50)", 3),
           "coverage": ("coverage", 3), "interval_width_median": ("width (d)", 0)}
STATUSES = ("ok", "insufficient_data", "stale_data")
COUNTER = re.compile(r'"value": "(\d+)", "label": "Columns"\}, \{"value": "(\d+)", '
                     r'"label": "Drifted Columns"\}, \{"value": "([\d.]+)", '
                     r'"label": "Share of Drifted Columns"')


def _value(metrics: dict, key: str) -> float | None:
    value = metrics.get(key)
    return None if value is None or math.isnan(value) else float(value)


def _fmt(value: float | None, decimals: int) -> str:
    return "—" if value is None else f"{value:,.{decimals}f}"


def predictors(metrics: dict) -> list[tuple[str, str]]:
    """The known predictors with at least one metric, then any other baseline the run has."""
    known = dict(PREDICTORS)
    extra = sorted({".".join(k.split(".")[:2]) for k in metrics if k.startswith("baseline.")}
                   - set(known))
    return [(p, label) for p, label in [*PREDICTORS, *((p, p.replace(".", ": ")) for p in extra)]
            if any(_value(metrics, f"{p}.{m}") is not None for m in COLUMNS)]


def comparison(metrics: dict) -> pl.DataFrame:
    """One row per predictor, one column per metric; a metric the run lacks stays empty."""
    rows = [{"predictor": label} | {title: _value(metrics, f"{p}.{m}")
                                    for m, (title, _) in COLUMNS.items()}
            for p, label in predictors(metrics)]
    schema = {"predictor": pl.String} | {title: pl.Float64 for title, _ in COLUMNS.values()}
    return pl.DataFrame(rows, schema=schema)


def _comparison_table(frame: pl.DataFrame) -> pn.widgets.Tabulator:
    decimals = {title: d for title, d in COLUMNS.values()}
    shown = frame.with_columns(
        pl.col("predictor").map_elements(
            lambda p: f"<b>{esc(p)}</b>" if p == "model" else esc(p), return_dtype=pl.String),
        *(pl.col(t).map_elements(lambda v, d=d: _fmt(v, d), return_dtype=pl.String,
                                 skip_nulls=False) for t, d in decimals.items()))
    return pn.widgets.Tabulator(
        shown.to_pandas(), disabled=True, show_index=False, sizing_mode="stretch_width",
        formatters={"predictor": {"type": "html"}}, text_align={t: "right" for t in decimals},
        css_classes=["model-comparison"], layout="fit_data_stretch",
        configuration={"columnDefaults": {"headerSort": False}})


def _mae_chart(metrics: dict):
    rows = [(label, v, "#1f8f55" if p.startswith("model") else
             "#0f2742" if p == "oracle" else "#8a96a3")
            for p, label in predictors(metrics) if p not in ("cv", "loso")
            and (v := _value(metrics, f"{p}.mae_0_365")) is not None]
    if not rows:
        return html('<p class="empty">The run has no MAE for true RUL in (0, 365].</p>')
    rows.sort(key=lambda r: -r[1])
    bars = hv.Bars(rows, "predictor", ["MAE (days)", "colour"])
    return bars.opts(color="colour", invert_axes=True, height=320, responsive=True,
                     title="MAE for true RUL in (0, 365], test strings (days; lower is better)",
                     tools=["hover"], xlabel="", show_grid=True)


def _calibration(metrics: dict) -> pn.viewable.Viewable:
    from models.metrics import COVERAGE_BAND

    nominal, observed = _value(metrics, "conformal.nominal_coverage"), _value(metrics,
                                                                              "model.coverage")
    lo, hi = _value(metrics, "ci.model.coverage.lo"), _value(metrics, "ci.model.coverage.hi")
    raw, tuned = _value(metrics, "calibration.coverage_raw"), _value(metrics,
                                                                     "calibration.coverage")
    in_band = observed is not None and COVERAGE_BAND[0] <= observed <= COVERAGE_BAND[1]
    cards = '<div class="cards">' + "".join([
        stat_card("Nominal P10–P90 coverage", _fmt(nominal, 2), "what the interval promises",
                  name="nominal-coverage"),
        stat_card("Observed, test strings", _fmt(observed, 3),
                  f"90 % CI {_fmt(lo, 3)}–{_fmt(hi, 3)}" if lo is not None else "",
                  "" if observed is None else "ok" if in_band else "warn",
                  name="observed-coverage"),
        stat_card("Calibration batteries", f"{_fmt(raw, 3)} → {_fmt(tuned, 3)}",
                  "before → after the conformal offsets", name="calibration-coverage"),
        stat_card("Observed, true RUL ≤ 365 d", _fmt(_value(metrics, "model.coverage_le365"), 3),
                  "", name="coverage-le365"),
        stat_card("P10 above the truth by > 30 d", _fmt(_value(metrics, "model.late_share_p10"),
                                                        3), "share of test snapshots",
                  name="late-p10"),
    ]) + "</div>"
    sites = sorted((k.removeprefix("model.coverage.site."), v) for k, v in metrics.items()
                   if k.startswith("model.coverage.site.") and not math.isnan(v))
    if not sites:
        return pn.Column(html(cards, sizing_mode="stretch_width"),
                         html('<p class="empty">The run has no per-site coverage.</p>'),
                         sizing_mode="stretch_width")
    chart = hv.HSpan(*COVERAGE_BAND).opts(color="#1f8f55", alpha=0.12) * hv.Bars(
        sites, "site", "coverage").opts(color="#2b6cb0", tools=["hover"])
    if nominal is not None:
        chart = chart * hv.HLine(nominal).opts(color="#c62828", line_dash="dashed")
    chart = chart.opts(height=280, responsive=True, ylim=(0, 1), show_grid=True, xlabel="",
                       ylabel="observed coverage",
                       title=f"P10–P90 coverage by site, test strings (dashed: nominal; band: "
                             f"promotion window {COVERAGE_BAND[0]:.0%}–{COVERAGE_BAND[1]:.0%})")
    return pn.Column(html(cards, sizing_mode="stretch_width"), chart, sizing_mode="stretch_width")


def _champion(info: dict, session) -> pn.viewable.Viewable:
    m, tags = info["metrics"], info["tags"]
    decision, reason = tags.get("promotion.decision", "—"), tags.get("promotion.reason")
    note, kind, state = model_targets.promotion(decision, reason, m)
    best = min(((label, v) for p, label in predictors(m) if p.startswith("baseline.")
                and (v := _value(m, f"{p}.mae_0_365")) is not None), key=lambda r: r[1],
               default=None)
    cards = '<div class="cards">' + "".join([
        stat_card("Champion", f"v{info['version']}", f"{info['name']} · registered "
                  f"{local(info['registered_at'])}", name="champion-version"),
        stat_card("Promotion", decision, note, kind, name="promotion"),
        stat_card("MAE, true RUL (0, 365]", f"{_fmt(_value(m, 'model.mae_0_365'), 1)} d",
                  f"best {best[0]}: {best[1]:,.1f} d" if best else "no baseline in the run",
                  name="mae-0-365"),
        stat_card("P10–P90 coverage", _fmt(_value(m, "model.coverage"), 3),
                  f"nominal {_fmt(_value(m, 'conformal.nominal_coverage'), 2)}", name="coverage"),
    ]) + "</div>"
    text = (f'{cards}{state}<dl class="kv" id="champion-info"><dt>Why</dt>'
            f'<dd>{esc(reason or "—")}</dd>'
            f'<dt>Description</dt><dd>{esc(info["description"] or "—")}</dd>'
            f'<dt>Run</dt><dd><a id="mlflow-run-link" href="{esc(info["url"])}" target="_blank" '
            f'rel="noopener">{esc(info["run_id"])} in the MLflow UI ↗</a></dd></dl>')
    frame = comparison(m)
    return pn.Column(
        html(text, sizing_mode="stretch_width"),
        pn.Row(html("<h2>Test metrics against the baselines and the oracle</h2>"),
               download_buttons(session, "model-metrics", lambda: frame)),
        html('<p class="note">MAE in days by true RUL (already-failed blocks left out of the '
             'bins); late = share of P50 more than 30 d above the truth; coverage and median '
             'width (days) of the P10–P90 interval. — : the run did not record it.</p>',
             sizing_mode="stretch_width"),
        _comparison_table(frame), _mae_chart(m),
        html('<p class="note">Green: the model; navy: the oracle (knows the true capacity, '
             'evaluation only); grey: the baselines.</p>', sizing_mode="stretch_width"),
        html("<h2>Calibration of the P10–P90 interval</h2>"), _calibration(m),
        html("<h2>Targets</h2>"), html(model_targets.table(m), sizing_mode="stretch_width"),
        sizing_mode="stretch_width")


def _predictions_html(preds: pl.DataFrame, champion: int | None) -> str:
    if preds.is_empty() or "status" not in preds.columns:
        return ('<p class="empty" id="prediction-status">No prediction yet: the fleet has '
                'not been scored.</p>')
    counts = dict(preds.group_by("status").len().iter_rows())
    versions = sorted(v for v in preds["model_version"].unique().to_list() if v is not None)
    cards = "".join(stat_card(s.replace("_", " "), f"{counts.get(s, 0):,}", "batteries",
                              "ok" if s == "ok" else "warn" if counts.get(s) else "",
                              name=f"pred-{s}") for s in STATUSES)
    cards += "".join(stat_card(s.replace("_", " "), f"{n:,}", "batteries", "warn")
                     for s, n in counts.items() if s not in STATUSES)
    note = (f'Scored hour {esc(local(preds["as_of"].max()))} (simulated) · model version used: '
            f'{", ".join(f"v{v}" for v in versions) or "—"}')
    warn = ""
    if champion is not None and versions != [champion]:
        warn = (f'<p class="warn-box" id="version-mismatch">The latest scores used '
                f'{", ".join(f"v{v}" for v in versions) or "no model version"}; the champion '
                f'is v{champion}. Scores follow it from the next scoring run.</p>')
    return (f'<div class="cards" id="prediction-status">{cards}</div>'
            f'<p class="note">{note}</p>{warn}')


@functools.lru_cache(maxsize=16)
def drift_counts(path: str, mtime: float) -> tuple[int, int, float] | None:
    """(monitored features, drifted, drifted share) from the report's own summary counters,
    None if the report has none (read once per file version: a report is ~7 MB)."""
    found = COUNTER.search(Path(path).read_text(encoding="utf-8", errors="replace"))
    return (int(found[1]), int(found[2]), float(found[3])) if found else None


def _drift_html(reports: list[Path], root: Path) -> str:
    if not reports:
        return f'<p class="empty" id="drift-none">{esc(NO_DRIFT)}</p>'
    newest = reports[0]
    try:
        counts = drift_counts(str(newest), newest.stat().st_mtime)
    except FileNotFoundError:  # replaced since the listing: the next tick shows the new one
        counts = None
    share = ("drifted share not found in the report" if counts is None else
             f"{counts[1]} of {counts[0]} monitored features drifted ({counts[2]:.0%})")
    url = "/reports/" + newest.relative_to(root).as_posix()
    older = " · ".join(f'<a href="/reports/{esc(p.relative_to(root).as_posix())}" '
                       f'target="_blank" rel="noopener">{esc(p.stem)}</a>' for p in reports[1:11])
    return (f'<p id="drift-latest"><b>Scored day {esc(newest.stem)}</b>: {esc(share)} · '
            f'<a id="drift-open" href="{esc(url)}" target="_blank" rel="noopener">open the '
            f'report ↗</a> · <a href="{esc(url)}" download>download</a></p>'
            + (f'<p class="note">Earlier reports: {older}</p>' if older else ""))


def build(session, app) -> tuple[str, pn.viewable.Viewable]:
    data = session.data
    seen = {"preds": data("slow", "latest_predictions"), "champion": None}
    predictions = html(_predictions_html(seen["preds"], None), sizing_mode="stretch_width")
    champion = pn.Column(pn.Row(pn.indicators.LoadingSpinner(value=True, size=24),
                                html('<p class="note">Reading the champion from the MLflow '
                                     'registry…</p>')),
                         sizing_mode="stretch_width", css_classes=["champion"])

    async def load() -> None:
        info = await asyncio.to_thread(data, "model", "model_info")
        if info is None:
            champion.objects = [html(f'<p class="empty" id="no-model">{esc(NO_MODEL)}</p>')]
            return
        seen["champion"] = info["version"]
        predictions.object = _predictions_html(seen["preds"], info["version"])
        champion.objects = [_champion(info, session)]

    pn.state.onload(load)

    root = data.reader.layout.reports_dir
    reports = data("slow", "drift_reports")
    drift = html(_drift_html(reports, root), sizing_mode="stretch_width")
    frame = html("", sizing_mode="stretch_width")
    show = pn.widgets.Toggle(name="Show the report here", button_type="light", width=200,
                             visible=bool(reports), css_classes=["drift-show"])

    def embed(event) -> None:
        newest = data("slow", "drift_reports")
        frame.object = "" if not (event.new and newest) else (
            f'<iframe class="drift-frame" id="drift-frame" title="Evidently drift report" '
            f'sandbox="allow-scripts allow-popups allow-downloads" '
            f'src="/reports/{esc(newest[0].relative_to(root).as_posix())}"></iframe>')

    show.param.watch(embed, "value")

    def tick() -> None:
        preds = data("slow", "latest_predictions")
        if preds is not seen["preds"]:
            seen["preds"] = preds
            text = _predictions_html(preds, seen["champion"])
            if predictions.object != text:
                predictions.object = text
        text = _drift_html(data("slow", "drift_reports"), root)
        if drift.object != text:
            drift.object = text
            show.visible = "drift-none" not in text

    session.on_tick(tick)
    return "Model", pn.Column(
        champion, html("<h2>Latest scores</h2>"), predictions,
        html("<h2>Drift: latest scored day against the training features</h2>"), drift, show,
        frame, sizing_mode="stretch_width")
