"""`rul demo` (what `make demo` runs): the whole platform on this machine. Builds the history
and the model if they are missing (a second run reuses them), then starts the MLflow UI, the
live simulator and `dagster dev` (webserver and daemon: schedules and sensors run), prints
every URL, and on Ctrl-C stops all of it: the simulator lands its last batch, then the Dagster
and MLflow process groups end.

Every service listens on 127.0.0.1 only; who can reach what, and the production setup, is in
docs/deployment-security.md."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core.settings import REPO_ROOT
from pipelines.cli.common import UserError

DAGSTER_EXIT_S = 60.0  # `dagster dev` takes ~25 s to exit after SIGTERM (PLATFORM_NOTES)
JUPYTER_CONFIG = REPO_ROOT / "deploy" / "jupyter"
# what the children need to know to stay quiet: no usage reports leave this machine
NO_TELEMETRY = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def register(commands: argparse._SubParsersAction) -> None:
    """Add `rul demo` to the `rul` parser."""
    demo = commands.add_parser("demo", help="run the whole platform (make demo)",
                               description="Dashboards, Dagster UI and daemon, MLflow UI, "
                               "JupyterLab and the live simulator; Ctrl-C stops everything.")
    demo.add_argument("--speed", type=float, default=60.0,
                      help="simulator speed (simulated s per wall s; default 60: an hour a "
                      "minute, so an HVAC failure unfolds in minutes)")
    demo.add_argument("--tick", default="5s", help="simulator tick (default 5s)")
    demo.add_argument("--dagster-port", type=int, default=3000)
    demo.add_argument("--mlflow-port", type=int, default=5000)
    demo.add_argument("--dashboard-port", type=int, default=5006)
    demo.add_argument("--jupyter-port", type=int, default=8888)
    demo.set_defaults(command=_demo)


def _demo(args: argparse.Namespace) -> int:
    from core.layout import Layout
    from core.live import start_detached, stop
    from core.settings import Settings
    from pipelines.cli.dashboard import first_admin
    from pipelines.cli.simulate import parse_duration

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise UserError("DAGSTER_HOME is not set: run `make demo`")
    tick = parse_duration(args.tick, "--tick")
    settings = Settings.from_env()
    layout = Layout(settings.data_dir)
    began = time.perf_counter()
    if not _built(settings, layout):
        print("[1/6] building the history and the model (`rul pipeline`: 12 runs, ~4-6 min on "
              "2 cores; each run prints its step number and time)", flush=True)
        if subprocess.call([sys.executable, "-m", "pipelines.cli", "pipeline"]) != 0:
            raise UserError("`rul pipeline` failed (see above); nothing was started")
        from core.live import reset_live

        reset_live(layout)  # live data of an older history would not continue this one
    else:
        print("[1/6] history, warehouse and champion model found: reused", flush=True)
    password = first_admin(settings)
    _recover_runs(home)
    logs = layout.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    groups: list[tuple[str, subprocess.Popen]] = []
    try:  # every UI starts at once and they come up side by side; then wait for each
        print("[2/6] MLflow UI", flush=True)
        groups.append(("MLflow UI", _mlflow_ui(settings, args.mlflow_port)))
        print("[3/6] Dagster webserver and daemon", flush=True)
        groups.append(("Dagster", _spawn(
            [sys.executable, "-m", "dagster", "dev", "--host", "127.0.0.1", "--port",
             str(args.dagster_port)], logs / "dagster.log", cwd=home)))
        print("[4/6] dashboards", flush=True)
        groups.append(("Dashboards", _spawn(
            [sys.executable, "-m", "pipelines.cli", "dashboard", "--port",
             str(args.dashboard_port)], logs / "dashboards.log")))
        print("[5/6] JupyterLab on notebooks/", flush=True)
        groups.append(("JupyterLab", _jupyter(layout, args.jupyter_port, logs / "jupyter.log")))
        # MLflow's client takes seconds to import: let it do so while the UIs start
        lookup = ThreadPoolExecutor(1)
        experiment_page = lookup.submit(_experiment_page, settings)
        lookup.shutdown(wait=False)  # the thread ends with its one lookup
        for name, url in (
                ("Dashboards", f"http://127.0.0.1:{args.dashboard_port}/login"),
                ("JupyterLab", f"http://127.0.0.1:{args.jupyter_port}/api"),  # no token needed
                ("MLflow UI", f"http://127.0.0.1:{args.mlflow_port}/health"),
                ("Dagster UI", f"http://127.0.0.1:{args.dagster_port}/server_info")):
            _wait_http(name, url, groups, began)
        # the UIs first (two cores are busy starting them), then the simulator's ticks
        print(f"[6/6] live simulator ({tick:g} s ticks at {args.speed:g}x)", flush=True)
        pid = start_detached(layout, tick, args.speed)
        if settings.admin_password:
            login = "admin / the password in RUL_ADMIN_PASSWORD"
        elif password:
            login = f"admin / {password}  (one-time: change it on the Users page)"
        else:
            login = "your existing users (`rul users list`)"
        print(f"\nup in {time.perf_counter() - began:.0f} s:\n"
              f"  Dashboards   http://127.0.0.1:{args.dashboard_port}  sign in: {login}\n"
              f"  Dagster UI   http://127.0.0.1:{args.dagster_port}\n"
              f"  MLflow UI    http://127.0.0.1:{args.mlflow_port}/"
              f"{experiment_page.result()}\n"
              f"  JupyterLab   http://127.0.0.1:{args.jupyter_port}/lab  token: in "
              f"{layout.jupyter_token_path} (yours only)\n"
              f"  simulator    pid {pid}: `rul simulate status`, `rul simulate scenario list`\n"
              f"  logs         {logs}\n"
              "Ctrl-C stops everything.", flush=True)
        _wait(groups)
    except KeyboardInterrupt:
        pass
    finally:
        # a second Ctrl-C (or make's and uv's copies of the first) must not cut the shutdown
        # short and leave the UIs running: from here on the stop runs to its end
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        print("\nstopping: simulator (every part is stopped before this exits)", flush=True)
        stop(layout)
        for name, proc in reversed(groups):
            print(f"stopping: {name}", flush=True)
            _end_group(proc, DAGSTER_EXIT_S if name == "Dagster" else 10.0)
        print("stopped")
    return 0


def _spawn(cmd: list[str], log_path: Path, cwd: str | None = None,
           env: dict[str, str] | None = None) -> subprocess.Popen:
    """A child in its own process group (so Ctrl-C ends all of it), logging to a file."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _recover_runs(home: str) -> None:
    """Nothing of an earlier demo runs now, so a run its Ctrl-C left queued or in progress
    is over: mark it so and free its pool slots, or it would hold `rul_scoring` (limit 1)
    and block every new scoring run."""
    import contextlib

    import dagster as dg

    unfinished = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
                  dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
                  dg.DagsterRunStatus.CANCELING]
    with contextlib.chdir(home), dg.DagsterInstance.from_config(home) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(statuses=unfinished))
        for run in runs:
            instance.report_run_canceled(run, message="ended with the previous `make demo`")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    if runs:
        print(f"      {len(runs)} run(s) left unfinished by an earlier demo marked canceled",
              flush=True)


def _built(settings, layout) -> bool:
    """History with its end state, the warehouse, and a champion model in the registry."""
    if not layout.warehouse_path.exists() or not any((layout.lake_dir / "live_state").glob("*")):
        return False
    return _has_champion(str(settings.mlflow_uri))


def _has_champion(tracking_uri: str) -> bool:
    """Whether battery-rul has a champion. The demo's own SQLite registry is read directly:
    importing mlflow for its client takes 10 s on a busy 2-core machine, all of it before any
    UI can start. tests/test_demo.py checks this read against the client's answer."""
    from models.registry import CHAMPION, MODEL_NAME

    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri.removeprefix("sqlite:///"))
        if not path.exists():
            return False
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
            try:
                return conn.execute(
                    "SELECT 1 FROM registered_model_aliases a JOIN model_versions v USING "
                    "(workspace, name, version) WHERE workspace = 'default' AND name = ? "
                    "AND alias = ? AND v.current_stage != 'Deleted_Internal'",
                    (MODEL_NAME, CHAMPION)).fetchone() is not None
            except sqlite3.Error:  # not (yet) a registry: nothing was built into it
                return False
    try:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    except Exception:  # noqa: BLE001 - any registry answer but a version means "not built"
        return False
    return True


def _mlflow_ui(settings, port: int) -> subprocess.Popen:
    store = Path(settings.data_dir) / "mlflow"
    store.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", str(settings.mlflow_uri),
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # one user: one worker
    if settings.mlflow_artifacts:
        cmd += ["--default-artifact-root", settings.mlflow_artifacts]
    # no AI gateway: its endpoints and secrets pages serve no battery model, and unused is safer
    env = os.environ | NO_TELEMETRY | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                                       "MLFLOW_ENABLE_AI_GATEWAY": "false"}
    with open(store / "ui.log", "ab") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)


def _experiment_page(settings) -> str:
    """The UI's fragment for the battery-rul runs (MLflow 3 opens on a generative-AI home
    otherwise); `workflowType` is the UI's own switch between its GenAI and classic-ML views."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from models.registry import EXPERIMENT

    try:
        experiment = MlflowClient(tracking_uri=settings.mlflow_uri).get_experiment_by_name(
            EXPERIMENT)
    except MlflowException:  # a link to the UI's home is still a working link
        return ""
    if experiment is None:
        return ""
    return f"#/experiments/{experiment.experiment_id}?workflowType=machine_learning"


def _jupyter(layout, port: int, log_path: Path) -> subprocess.Popen:
    """JupyterLab on notebooks/, configured by deploy/jupyter (terminals off, the broken widget
    extensions disabled). Its token goes through the child's environment, which only this user
    can read (/proc/<pid>/environ is 0400), never through argv, which `ps` shows to everyone."""
    layout.jupyter_dir.mkdir(parents=True, exist_ok=True)
    env = os.environ | NO_TELEMETRY | {
        "JUPYTER_TOKEN": _jupyter_token(layout.jupyter_token_path),
        "JUPYTER_CONFIG_PATH": str(JUPYTER_CONFIG),
        # replaces ~/.jupyter: the user's settings and workspaces stay with the data, and a
        # personal config cannot re-enable what deploy/jupyter turns off
        "JUPYTER_CONFIG_DIR": str(layout.jupyter_dir),
    }
    cmd = [sys.executable, "-m", "jupyterlab", "--port", str(port),
           f"--ServerApp.root_dir={REPO_ROOT / 'notebooks'}",
           *(["--allow-root"] if os.geteuid() == 0 else [])]  # CI and containers run as root
    return _spawn(cmd, log_path, env=env)


def _jupyter_token(path: Path) -> str:
    """The token from its 0600 file in the private auth folder, made on first use and kept, so
    a bookmarked or signed-in browser stays valid across demos. Whoever can read the file can
    read the data folder already."""
    from core.private_files import private_secret

    token = private_secret(path, 32)
    if not token:  # emptied by hand: make a new one
        path.unlink()
        token = private_secret(path, 32)
    return token


def _wait_http(name: str, url: str, groups: list[tuple[str, subprocess.Popen]],
               began: float, timeout_s: float = 300.0) -> None:
    """Until the UI answers (a cold start of the Dagster webserver takes tens of seconds);
    prints the time since the demo began."""
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                print(f"      {name} answering ({time.perf_counter() - began:.0f} s since the "
                      "start)", flush=True)
                return
        except OSError:
            gone = [other for other, proc in groups if proc.poll() is not None]
            if gone:
                raise UserError(f"{', '.join(gone)} exited while {name} was starting; see "
                                "the logs") from None
            time.sleep(1.0)
    raise UserError(f"{name} did not answer at {url} within {timeout_s:.0f} s")


def _wait(groups: list[tuple[str, subprocess.Popen]]) -> None:
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    while True:
        for name, proc in groups:
            if proc.poll() is not None:
                print(f"{name} exited (status {proc.returncode}); stopping the rest", flush=True)
                return
        time.sleep(1.0)


def _end_group(proc: subprocess.Popen, timeout_s: float) -> None:
    """SIGTERM the process group, wait, then SIGKILL whatever is left of it."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
