"""`rul pipeline`: materialize every asset for every site once, in this process, recorded in
the Dagster instance (so `dagster dev` shows the runs). Runs go in dependency order: the
unpartitioned fleet tables, one run per site partition, the warehouse views, then the training
assets and their promotion check (group `training`), which need every site."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import dagster as dg

from pipelines.jobs import BATCH_GROUPS

if TYPE_CHECKING:
    from dagster_shared.error import SerializableErrorInfo

# Events are logged at DEBUG; INFO keeps the asset's own messages and every error.
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
JOB = "materialize_all"


@dataclass
class Outcome:
    label: str
    seconds: float
    failures: list[str] = field(default_factory=list)


def plan(defs: dg.Definitions) -> list[tuple[str, set[dg.AssetKey], str | None]]:
    """(label, asset keys, partition key) for each run, in the order they must run."""
    graph = defs.resolve_asset_graph()
    keys = {k for k in graph.materializable_asset_keys if graph.get(k).group_name in BATCH_GROUPS}
    partitioned = {k for k in keys if graph.get(k).partitions_def is not None}
    after = dg.AssetSelection.assets(*partitioned).downstream(include_self=False).resolve(graph)
    after = after & keys  # the live groups downstream run from their sensors
    partitions = defs.resolve_job_def(JOB).partitions_def
    sites = partitions.get_partition_keys() if partitions else []
    runs = [("fleet", keys - partitioned - after, None)]
    runs += [(site, partitioned, site) for site in sites]
    training = {k for k in after if graph.get(k).group_name == "training"}
    return [*runs, ("warehouse", after - training, None), ("training", training, None)]


def run_all(
    defs: dg.Definitions, instance: dg.DagsterInstance, echo: Callable[[str], None]
) -> list[Outcome]:
    job = defs.resolve_job_def(JOB)
    outcomes = []
    steps = [step for step in plan(defs) if step[1]]
    start = time.perf_counter()
    for number, (label, keys, partition) in enumerate(steps, 1):
        echo(f"[{number}/{len(steps)}] {label:<12} running ({time.perf_counter() - start:.0f} s "
             "so far)")
        began = time.perf_counter()
        result = job.execute_in_process(
            run_config=RUN_CONFIG,
            instance=instance,
            partition_key=partition,
            asset_selection=sorted(keys, key=lambda k: k.to_user_string()),
            raise_on_error=False,
        )
        outcome = Outcome(label, time.perf_counter() - began, _failures(result))
        echo(f"[{number}/{len(steps)}] {label:<12} {'ok' if not outcome.failures else 'FAILED':<6}"
             f" {outcome.seconds:7.1f} s")
        for failure in outcome.failures:
            echo(f"  - {failure}")
        for warning in _warnings(result):
            echo(f"  ~ {warning}")
        outcomes.append(outcome)
    return outcomes


def _failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """One line per failed expectation or failed step (a blocking check's step failure only
    repeats the check, so it is left out). Checks failed with severity WARN are not failures."""
    checks = [
        f"{e.asset_key.to_user_string()}:{e.check_name}: {line.removeprefix('- ')}"
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
        for line in _check_failures(e)
    ]
    steps = [
        f"step {e.step_key}: {_first_line(e.step_failure_data.error)}"
        for e in result.get_step_failure_events()
        if e.step_failure_data.error is not None
        and e.step_failure_data.error.cls_name != "DagsterAssetCheckFailedError"
    ]
    return checks + steps if checks or steps or result.success else ["run failed"]


def _first_line(error: SerializableErrorInfo) -> str:
    """The error's first line; a raised `dg.Failure` is a message for people, shown alone."""
    line = error.message.strip().splitlines()[0]
    return line.split(": ", 1)[-1] if error.cls_name == "Failure" else line


def _warnings(result: dg.ExecuteInProcessResult) -> list[str]:
    """Checks that failed with severity WARN, e.g. a challenger that was not promoted."""
    return [
        f"{e.asset_key.to_user_string()}:{e.check_name}: {e.description or 'warning'}"
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.WARN
    ]


def _check_failures(evaluation: dg.AssetCheckEvaluation) -> list[str]:
    failures = evaluation.metadata.get("failures")
    return str(failures.value).splitlines() if failures else [evaluation.description or "failed"]
