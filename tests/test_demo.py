"""`rul demo` recovers from an earlier demo's Ctrl-C: runs it left queued or in progress are
marked canceled, so they no longer hold the scoring pool (queued runs are handled alike; a
hand-made one cannot be added without a code location)."""

from __future__ import annotations

import contextlib
import shutil

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRun

from core.settings import REPO_ROOT
from pipelines.cli.demo import _recover_runs


def test_runs_left_by_an_earlier_demo_are_canceled(tmp_path):
    shutil.copy(REPO_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    with contextlib.chdir(tmp_path), dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        for status in (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING,
                       dg.DagsterRunStatus.SUCCESS):
            instance.add_run(DagsterRun(job_name="rul_scoring", status=status))
    _recover_runs(str(tmp_path))
    with contextlib.chdir(tmp_path), dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        statuses = sorted(r.status.value for r in instance.get_runs())
    assert statuses == ["CANCELED", "CANCELED", "SUCCESS"]
