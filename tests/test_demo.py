"""`rul demo`: it recovers from an earlier demo's Ctrl-C (runs it left queued or in progress are
marked canceled, so they no longer hold the scoring pool; queued runs are handled alike, a
hand-made one cannot be added without a code location), and it starts the side UIs locked down
and on the team's own work: JupyterLab's token never on a command line, no terminals, only
working extensions; no telemetry; MLflow on the battery experiment; no Dagster newsletter."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import stat
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRun
from local_servers import free_port

from core.layout import Layout
from core.settings import REPO_ROOT
from models.registry import CHAMPION, EXPERIMENT, MODEL_NAME
from pipelines.cli.demo import (
    _end_group,
    _experiment_page,
    _has_champion,
    _jupyter,
    _jupyter_token,
    _mlflow_ui,
    _recover_runs,
)


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


def _get(url: str, token: str | None = None, method: str = "GET") -> tuple[int, str]:
    headers = {"Authorization": f"token {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _wait_up(url: str, proc: subprocess.Popen, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "JupyterLab exited while starting"
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"no answer at {url} within {timeout_s:.0f} s")


def test_jupyter_token_is_made_once_in_a_private_file(tmp_path):
    layout = Layout(tmp_path / "data")
    first = _jupyter_token(layout.jupyter_token_path)
    assert len(first) >= 40
    assert stat.S_IMODE(layout.jupyter_token_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(layout.auth_dir.stat().st_mode) == 0o700
    layout.jupyter_token_path.chmod(0o644)
    assert _jupyter_token(layout.jupyter_token_path) == first  # kept across demos
    assert stat.S_IMODE(layout.jupyter_token_path.stat().st_mode) == 0o600
    layout.jupyter_token_path.write_text("\n")
    assert _jupyter_token(layout.jupyter_token_path) not in ("", first)


def test_jupyterlab_child_keeps_the_token_off_argv_with_terminals_and_broken_extensions_off(
        tmp_path, monkeypatch):
    """The real child as `rul demo` starts it: the token is in no process's command line (what
    `ps` shows every local user) nor in its log, every API wants it, terminals answer 404, and
    the page config disables the two broken widget extensions."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    layout = Layout(tmp_path / "data")
    port = free_port()
    log = tmp_path / "jupyter.log"
    proc = _jupyter(layout, port, log)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_up(f"{base}/api", proc)
        token = layout.jupyter_token_path.read_text().strip()
        argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert argv[1:3] == [b"-m", b"jupyterlab"]
        assert not [arg for arg in argv if token.encode() in arg or b"token" in arg.lower()]
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        assert f"JUPYTER_TOKEN={token}".encode() in environ
        assert _get(f"{base}/api/status")[0] == 403
        assert _get(f"{base}/api/status", token)[0] == 200
        assert _get(f"{base}/api/terminals", token)[0] == 404
        assert _get(f"{base}/api/terminals", token, method="POST")[0] == 404
        status, page = _get(f"{base}/lab", token)
        config = json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page,
                                      re.DOTALL).group(1))
        assert status == 200 and config["terminalsAvailable"] is False
        disabled = set(config["disabledExtensions"])  # the names the browser will not load
        assert {"catboost-widget", "jupyterlab-plotly",
                "@jupyterlab/apputils-extension:announcements"} <= disabled  # the news prompt
        assert "@pyviz/jupyterlab_pyviz" not in disabled
        assert config["news"] == {"disabled": True}
    finally:
        _end_group(proc, 10.0)
    assert token not in log.read_text()


def test_mlflow_ui_child_runs_without_telemetry_or_ai_gateway(tmp_path, monkeypatch, settings):
    spawned: list[tuple[list[str], dict[str, str]]] = []

    def record(cmd, **kwargs):
        spawned.append((cmd, kwargs["env"]))

    monkeypatch.setattr(subprocess, "Popen", record)
    _mlflow_ui(settings, 5999)
    [(cmd, env)] = spawned
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true" and env["DO_NOT_TRACK"] == "true"
    assert env["MLFLOW_ENABLE_AI_GATEWAY"] == "false"


def test_the_mlflow_url_and_the_champion_check_read_the_registry(settings):
    """The banner's link opens the battery experiment; the start-up check that reads the SQLite
    registry directly (to spare the parent MLflow's import) agrees with MLflow's client."""
    from mlflow import MlflowClient

    uri = str(settings.mlflow_uri)
    assert _experiment_page(settings) == "" and not _has_champion(uri)  # nothing yet
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # not a registry set earlier
    experiment_id = client.create_experiment(EXPERIMENT)
    assert _experiment_page(settings) == (
        f"#/experiments/{experiment_id}?workflowType=machine_learning")
    run_id = client.create_run(experiment_id).info.run_id
    client.create_registered_model(MODEL_NAME)
    for _ in range(2):
        client.create_model_version(MODEL_NAME, f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias(MODEL_NAME, "challenger", "1")
    assert not _has_champion(uri)
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, "2")
    assert _has_champion(uri) and client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    client.delete_model_version(MODEL_NAME, "2")
    assert not _has_champion(uri)


def test_the_dagster_instance_sends_no_telemetry_and_shows_no_newsletter_dialog(tmp_path):
    shutil.copy(REPO_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    with contextlib.chdir(tmp_path), dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.telemetry_enabled is False
        assert instance.nux_enabled is False  # what the UI's `shouldShowNux` query checks
