"""The production configurations of the side UIs, run for real: MLflow's basic-auth app with
deploy/mlflow/basic_auth.ini (only its databases moved to a temporary folder) refuses anonymous
calls and keeps a read-only user from moving the `champion` alias; nginx with
deploy/nginx/dagster.conf (ports and paths swapped for temporary ones) refuses anyone without a
password in front of a stand-in for the Dagster webserver."""

from __future__ import annotations

import base64
import configparser
import http.server
import json
import os
import pwd
import shutil
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from local_servers import NoRedirect, free_port

from core.settings import REPO_ROOT, sqlite_uri

DEPLOY = REPO_ROOT / "deploy"
ADMIN_PASSWORD = "Adm1n-for-this-test-only"


def _call(url: str, user: tuple[str, str] | None = None, body: dict | None = None,
          context: ssl.SSLContext | None = None) -> tuple[int, dict | str]:
    """Status and decoded body of one request (POST when there is a body)."""
    headers = {"Content-Type": "application/json"}
    if user:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(user).encode()).decode()
    data = None if body is None else json.dumps(body).encode()
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context),
                                         NoRedirect())
    try:
        with opener.open(urllib.request.Request(url, data=data, headers=headers),
                         timeout=10) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
        if 300 <= exc.code < 400:
            text = exc.headers["Location"]
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def _wait_up(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 180.0) -> None:
    opener = urllib.request.build_opener(NoRedirect())
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            opener.open(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # answering, if only to refuse
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"no answer at {url} within {timeout_s:.0f} s")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.mark.slow  # the first start creates both databases' schemas (~30-60 s on 2 cores)
def test_mlflow_basic_auth_keeps_the_champion_alias_to_granted_users(tmp_path):
    config = configparser.ConfigParser()
    config.read(DEPLOY / "mlflow" / "basic_auth.ini")
    assert config["mlflow"]["default_permission"] == "READ"
    assert "admin_password" not in config["mlflow"]  # from the environment only
    config["mlflow"]["database_uri"] = sqlite_uri(tmp_path / "auth.db")
    # each password check is a slow PBKDF2 hash (seconds on a busy 2-core machine): remember
    # good ones for the test's minute (wrong ones are never cached)
    config["mlflow"]["auth_cache_ttl_seconds"] = "60"
    with open(tmp_path / "basic_auth.ini", "w") as file:
        config.write(file)
    port = free_port()
    env = os.environ | {
        "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "basic_auth.ini"),
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-csrf-key",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    log = tmp_path / "mlflow.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth",
             "--backend-store-uri", sqlite_uri(tmp_path / "mlflow.db"),
             "--default-artifact-root", (tmp_path / "artifacts").as_uri(),
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api/2.0/mlflow"
    grants = f"http://127.0.0.1:{port}/api/3.0/mlflow/users/permissions"
    admin = ("admin", ADMIN_PASSWORD)
    viewer, promoter = ("viewer", "V1ewer-only-reads"), ("promoter", "Pr0moter-of-models")
    alias = {"name": "battery-rul", "alias": "champion", "version": "1"}
    try:
        _wait_up(f"http://127.0.0.1:{port}/health", proc, log)
        search = f"{api}/experiments/search?max_results=1"
        assert _call(search)[0] == 401
        assert _call(search, ("admin", "wrong"))[0] == 401
        assert _call(search, admin)[0] == 200
        for user, password in (viewer, promoter):
            assert _call(f"{api}/users/create", admin,
                         {"username": user, "password": password})[0] == 200
        assert _call(f"{api}/users/create", viewer,
                     {"username": "eve", "password": "Eve-makes-herself"})[0] == 403
        assert _call(f"{api}/registered-models/create", admin, {"name": "battery-rul"})[0] == 200
        run = _call(f"{api}/runs/create", admin, {"experiment_id": "0"})[1]["run"]["info"]
        assert _call(f"{api}/model-versions/create", admin,
                     {"name": "battery-rul", "source": f"runs:/{run['run_id']}/model",
                      "run_id": run["run_id"]})[0] == 200
        assert _call(f"{api}/registered-models/get?name=battery-rul", viewer)[0] == 200
        assert _call(f"{api}/registered-models/alias", viewer, alias)[0] == 403
        assert _call(f"{api}/registered-models/alias", promoter, alias)[0] == 403
        grant = {"username": "promoter", "resource_type": "registered_model",
                 "resource_id": "battery-rul", "permission": "EDIT"}
        assert _call(f"{grants}/grant", viewer, grant)[0] == 403
        assert _call(f"{grants}/grant", admin, grant)[0] == 200
        assert _call(f"{api}/registered-models/alias", promoter, alias)[0] == 200
        status, model = _call(f"{api}/registered-models/get?name=battery-rul", viewer)
        assert status == 200
        assert model["registered_model"]["aliases"] == [{"alias": "champion", "version": "1"}]
    finally:
        _stop(proc)


class _Dagster(http.server.BaseHTTPRequestHandler):
    """Stands in for the Dagster webserver: answers 200 and says what it was sent."""

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path,
                           "authorization": self.headers.get("Authorization"),
                           "forwarded_proto": self.headers.get("X-Forwarded-Proto")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def _nginx_conf(tmp_path: Path, upstream: int, http_port: int, https_port: int) -> Path:
    """deploy/nginx/dagster.conf inside a minimal nginx.conf that runs unprivileged in tmp_path;
    only its ports and file paths are replaced."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
         "subjectAltName=IP:127.0.0.1", "-keyout", str(tmp_path / "tls.key"),
         "-out", str(tmp_path / "tls.crt")], check=True, capture_output=True)
    hashed = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input="S1gned-in-engineer",
                            check=True, capture_output=True, text=True).stdout.strip()
    (tmp_path / "dagster.htpasswd").write_text(f"engineer:{hashed}\n")
    site = (DEPLOY / "nginx" / "dagster.conf").read_text()
    for old, new in (("127.0.0.1:3000", f"127.0.0.1:{upstream}"),
                     ("listen 80;", f"listen 127.0.0.1:{http_port};"),
                     ("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl"),
                     ("/etc/nginx/tls/dagster.crt", str(tmp_path / "tls.crt")),
                     ("/etc/nginx/tls/dagster.key", str(tmp_path / "tls.key")),
                     ("/etc/nginx/dagster.htpasswd", str(tmp_path / "dagster.htpasswd"))):
        assert old in site, old
        site = site.replace(old, new)
    (tmp_path / "dagster.conf").write_text(site)
    user = pwd.getpwuid(os.geteuid()).pw_name  # as root, workers would otherwise be `nobody`
    temp = "".join(f"{kind}_temp_path {tmp_path / kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = tmp_path / "nginx.conf"
    main.write_text(f"{'user ' + user + ';' if os.geteuid() == 0 else ''}\n"
                    f"daemon off;\npid {tmp_path / 'nginx.pid'};\n"
                    f"error_log {tmp_path / 'error.log'};\nevents {{}}\n"
                    f"http {{\naccess_log {tmp_path / 'access.log'};\n{temp}"
                    f"include {tmp_path / 'dagster.conf'};\n}}\n")
    return main


@pytest.mark.skipif(shutil.which("nginx") is None and not os.environ.get("CI"),
                    reason="nginx not installed (.ci/run installs Debian's nginx-light; "
                    "under CI a missing nginx fails)")
def test_nginx_in_front_of_dagster_wants_a_password_over_tls(tmp_path):
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Dagster)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    http_port, https_port = free_port(), free_port()
    conf = _nginx_conf(tmp_path, upstream.server_address[1], http_port, https_port)
    check = subprocess.run(["nginx", "-t", "-c", str(conf)], check=False, capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stderr
    log = tmp_path / "nginx.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["nginx", "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    tls = ssl.create_default_context(cafile=tmp_path / "tls.crt")
    base = f"https://127.0.0.1:{https_port}"
    try:
        _wait_up(f"http://127.0.0.1:{http_port}/", proc, log, timeout_s=30)
        assert _call(f"http://127.0.0.1:{http_port}/runs") == (
            301, "https://127.0.0.1/runs")
        assert _call(f"{base}/runs", context=tls)[0] == 401
        assert _call(f"{base}/runs", ("engineer", "wrong"), context=tls)[0] == 401
        status, seen = _call(f"{base}/runs", ("engineer", "S1gned-in-engineer"), context=tls)
        assert status == 200
        assert seen == {"path": "/runs", "authorization": None, "forwarded_proto": "https"}
    finally:
        _stop(proc)
        upstream.shutdown()
