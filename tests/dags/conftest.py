"""A throwaway MLflow 3.17.2 server on loopback for the DAG tests (standard library only).

Shared by both sides of `make dags-test`: the pipelines environment (task
functions) and the Airflow environment (DagBag, dag.test()). The server is the
real ``mlflow server`` of the pipelines environment with a sqlite backend in a
temporary directory, ``--serve-artifacts`` into a local folder and the
basic-auth app with the platform's default permission (READ). The tests act as
``mlflow-pipelines`` with the grant the platform gives that user (EDIT on
every experiment and registered model), not as the admin, so a missing
permission fails here first.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
ADMIN_USER = "admin"
PIPELINES_USER = "mlflow-pipelines"
PIPELINES_PERMISSION = "EDIT"
START_TIMEOUT_S = 120.0


def pipelines_bin(name: str) -> Path:
    """A console script of the pipelines environment (DAGS_TEST_PIPELINES_VENV, else this one)."""
    venv = os.environ.get("DAGS_TEST_PIPELINES_VENV")
    return (Path(venv) / "bin" / name) if venv else Path(sys.executable).parent / name


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class MlflowServer:
    uri: str
    workdir: Path
    admin_password: str
    pipelines_password: str
    process: subprocess.Popen

    @property
    def artifacts_dir(self) -> Path:
        return self.workdir / "artifacts"

    def client_env(self) -> dict[str, str]:
        """What the airflow role puts in the scheduler's pipelines.env."""
        return {
            "MLFLOW_TRACKING_URI": self.uri,
            "MLFLOW_TRACKING_USERNAME": PIPELINES_USER,
            "MLFLOW_TRACKING_PASSWORD": self.pipelines_password,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }

    def call(self, method: str, path: str, payload: dict | None = None, *, admin: bool = False) -> dict:
        """A REST call as the pipelines user (or the admin); the decoded JSON answer."""
        user, password = (ADMIN_USER, self.admin_password) if admin else (PIPELINES_USER, self.pipelines_password)
        url = f"{self.uri}{path}"
        data = None
        if method == "GET" and payload:
            url += "?" + urllib.parse.urlencode(payload)
        elif payload is not None:
            data = json.dumps(payload).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback test server)
            body = response.read()
        return json.loads(body) if body else {}

    def champion_version(self, model_name: str) -> str | None:
        try:
            answer = self.call(
                "GET", "/api/2.0/mlflow/registered-models/alias", {"name": model_name, "alias": "champion"}
            )
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        return str(answer["model_version"]["version"])

    def run_tags(self, run_id: str) -> dict[str, str]:
        run = self.call("GET", "/api/2.0/mlflow/runs/get", {"run_id": run_id})["run"]
        return {tag["key"]: tag["value"] for tag in run["data"].get("tags", [])}


def _wait_health(uri: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"mlflow server not healthy after {START_TIMEOUT_S:.0f}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    workdir = tmp_path_factory.mktemp("mlflow")
    admin_password = secrets.token_urlsafe(18)
    auth_ini = workdir / "basic_auth.ini"
    auth_ini.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{workdir / 'basic_auth.db'}\n"
        f"admin_username = {ADMIN_USER}\n"
        f"admin_password = {admin_password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # verified credentials are cached: otherwise every request pays a PBKDF2 hash
        "auth_cache_ttl_seconds = 300\n"
    )
    auth_ini.chmod(0o600)
    port = _free_port()
    env = {
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(auth_ini),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(32),
    }
    log = workdir / "mlflow-server.log"
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603
            [
                str(pipelines_bin("mlflow")),
                "server",
                "--app-name",
                "basic-auth",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--backend-store-uri",
                f"sqlite:///{workdir / 'mlflow.db'}",
                "--serve-artifacts",
                "--artifacts-destination",
                str(workdir / "artifacts"),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = MlflowServer(f"http://127.0.0.1:{port}", workdir, admin_password, secrets.token_urlsafe(18), process)
    try:
        _wait_health(server.uri, process, log)
        # the platform's mlflow_users entry for the pipelines, as the mlflow role creates it
        server.call(
            "POST",
            "/api/2.0/mlflow/users/create",
            {"username": PIPELINES_USER, "password": server.pipelines_password},
            admin=True,
        )
        for resource_type in ("experiment", "registered_model"):
            server.call(
                "POST",
                "/api/3.0/mlflow/users/permissions/grant",
                {
                    "username": PIPELINES_USER,
                    "resource_type": resource_type,
                    "resource_id": "*",
                    "permission": PIPELINES_PERMISSION,
                },
                admin=True,
            )
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)


@pytest.fixture(scope="session")
def mlflow_env(mlflow_server: MlflowServer) -> Iterator[MlflowServer]:
    """The process environment of a pipelines task: the MLflow client settings of mlflow-pipelines."""
    patch = pytest.MonkeyPatch()
    for key, value in mlflow_server.client_env().items():
        patch.setenv(key, value)
    try:
        yield mlflow_server
    finally:
        patch.undo()
