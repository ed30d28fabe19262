"""The promotion gate: a blocking check on the model asset that moves the `champion` alias only
when the new version earns it.

Fairness matters more than speed here: the current champion is re-scored on exactly the
challenger's test snapshots (same rows, same features), so the two are compared on one set,
never on numbers from different splits. `models.metrics.promotion_decision` makes the call;
this check gathers the evidence, applies the decision to the registry and reports why.

Outcomes: promoted (passed); challenger rejected while a champion keeps serving (failed with
severity WARN: nothing downstream is harmed); rejected with no champion at all (failed, ERROR:
nothing can be scored, so downstream assets are blocked). A champion that cannot score the
current feature table (a model from before a feature change) cannot serve either: the
challenger is then judged against the baselines, and the reason says so.
"""

from dataclasses import dataclass

import dagster as dg
import polars as pl

from assets.metadata import markdown_table
from assets.resources.mlflow_store import MlflowStore
from assets.resources.storage import LakeStorage
from assets.training.features import TRAINING_SET_FILE
from assets.training.model import MODEL

KEYS = ["battery_id", "ts"]
# metric suffixes compared in the check's table: the deciding one (models.metrics
# DECIDING_METRIC, zero-free) first, then the inclusive one it replaced
SHOWN = ("mae_0_365", "mae_le365", "mae", "coverage")


class ChampionUnusable(RuntimeError):
    """The registered champion cannot be loaded or cannot score the current feature table
    (for instance a model trained before a feature was renamed)."""


@dataclass
class Decision:
    """What the gate decided about one challenger, with the evidence."""

    version: int
    promoted: bool
    reason: str
    before: int | None  # champion before the decision
    challenger: dict[str, float]
    champion: dict[str, float] | None  # the champion re-scored on the challenger's test set

    @property
    def after(self) -> int | None:
        return self.version if self.promoted else self.before


def decide(version: int, run_id: str, features: pl.DataFrame, *, tracking_uri: str) -> Decision:
    """Compare the challenger (`version`, logged by `run_id`) with the champion re-scored on
    the same test snapshots, and move the `champion` alias if the challenger wins."""
    from models import registry
    from models.metrics import promotion_decision

    challenger = registry.run_metrics(run_id, tracking_uri=tracking_uri)
    before = registry.champion_version(tracking_uri=tracking_uri)
    if before == version:
        return Decision(version, True, "already the champion", before, challenger, None)
    champion, unusable = None, ""
    if before is not None:
        try:
            champion = rescore(before, run_id, features, tracking_uri=tracking_uri)
        except ChampionUnusable as exc:  # it cannot serve either: judge against the baselines
            unusable = f"{exc}; judged against the baselines instead: "
    promoted, reason = promotion_decision(challenger, champion)
    reason = unusable + reason
    if promoted:
        registry.promote(version, reason, tracking_uri=tracking_uri)
    else:
        registry.reject(version, reason, tracking_uri=tracking_uri)
    return Decision(version, promoted, reason, before, challenger, champion)


@dg.asset_check(
    asset=MODEL,
    name="promotion",
    blocking=True,
    description="Promote the challenger to champion only if it beats the baselines and, on "
    "the challenger's own test set, the current champion.",
)
def promotion(
    context: dg.AssetCheckExecutionContext, storage: LakeStorage, mlflow: MlflowStore
) -> dg.AssetCheckResult:
    version, run_id = _materialized_version(context)
    decision = decide(version, run_id, storage.read_derived(TRAINING_SET_FILE),
                      tracking_uri=mlflow.tracking_uri)
    verdict = "promoted to champion" if decision.promoted else "not promoted"
    context.log.info(f"challenger v{version} {verdict}: {decision.reason} (champion before: "
                     f"{_name(decision.before)}, after: {_name(decision.after)})")
    return dg.AssetCheckResult(
        passed=decision.promoted,
        severity=dg.AssetCheckSeverity.WARN if decision.after is not None
        else dg.AssetCheckSeverity.ERROR,
        description=f"v{version} {verdict}: {decision.reason}",
        metadata={
            "promoted": decision.promoted,
            "reason": decision.reason,
            "challenger_version": version,
            "champion_before": _name(decision.before),
            "champion_after": _name(decision.after),
            "comparison": dg.MetadataValue.md(comparison(decision.challenger, decision.champion)),
            "run_url": dg.MetadataValue.url(mlflow.run_url(run_id)),
        },
    )


def _materialized_version(context: dg.AssetCheckExecutionContext) -> tuple[int, str]:
    """The model version and MLflow run of the materialization being checked."""
    event = context.instance.get_latest_materialization_event(MODEL)
    if event is None or event.asset_materialization is None:
        raise dg.Failure("models/battery_rul has never been materialized: nothing to promote")
    metadata = event.asset_materialization.metadata
    return int(metadata["model_version"].value), str(metadata["mlflow_run_id"].value)


def rescore(version: int, run_id: str, features: pl.DataFrame, *, tracking_uri: str
            ) -> dict[str, float]:
    """The registered `version`'s metrics on the test snapshots of `run_id`, with their
    features taken from `features` (the training set)."""
    from models import registry
    from models.metrics import regression_metrics

    evaluation = registry.run_evaluation(run_id, tracking_uri=tracking_uri)
    rows = evaluation.select(*KEYS, "true_rul_days").join(
        features.drop("true_rul_days"), on=KEYS, how="inner", maintain_order="left")
    if rows.height != evaluation.height:
        raise dg.Failure(f"only {rows.height} of the challenger's {evaluation.height} test "
                         "snapshots are in the training set: re-run the training assets together")
    try:
        model = registry.load_model(f"models:/{registry.MODEL_NAME}/{version}",
                                    tracking_uri=tracking_uri)
        predicted = model.predict(rows)
    except Exception as exc:  # any failure means this version cannot score today's features
        message = str(exc).splitlines()[0] if str(exc) else ""
        raise ChampionUnusable(f"champion v{version} cannot score the current features "
                               f"({type(exc).__name__}: {message})") from exc
    return regression_metrics(rows["true_rul_days"], predicted["rul_p50_days"],
                              p10=predicted["rul_p10_days"], p90=predicted["rul_p90_days"],
                              prefix="model")


def comparison(challenger: dict[str, float], champion: dict[str, float] | None) -> str:
    """Markdown: the headline metrics of challenger, champion, baselines and oracle."""
    rows = {"challenger": {k.removeprefix("model."): v for k, v in challenger.items()
                           if k.startswith("model.")}}
    if champion is not None:
        rows["champion (re-scored)"] = {k.removeprefix("model."): v for k, v in champion.items()}
    for name in sorted({k.split(".")[1] for k in challenger if k.startswith("baseline.")}):
        prefix = f"baseline.{name}."
        rows[f"baseline {name}"] = {k.removeprefix(prefix): v for k, v in challenger.items()
                                    if k.startswith(prefix)}
    rows["oracle"] = {k.removeprefix("oracle."): v for k, v in challenger.items()
                      if k.startswith("oracle.")}
    table = pl.DataFrame([{"model": name, **{m: values.get(m) for m in SHOWN}}
                          for name, values in rows.items()],
                         schema={"model": pl.String, **dict.fromkeys(SHOWN, pl.Float64)})
    return markdown_table(table)


def _name(version: int | None) -> str:
    return "none" if version is None else f"v{version}"
