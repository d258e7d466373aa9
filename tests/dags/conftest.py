"""A throwaway MLflow server (the pipelines lock's) on loopback for the DAG tests (standard library only).

Shared by both sides of `make dags-test`: the pipelines environment (task
functions) and the Airflow environment (DagBag, dag.test()). The server is
app/tests/mlflow_server.py's (the app's tests use the same one, loaded here by
path: neither environment has the app's test package): the real ``mlflow
server`` of the pipelines environment with a sqlite backend in a temporary
directory, ``--serve-artifacts`` into a local folder and the basic-auth app
with the platform's default permission (NO_PERMISSIONS). The tests act as
``mlflow-pipelines`` with the grants the platform gives that user (EDIT on the
pipelines' registered model, which the mlflow role creates as the admin; no
grant on anything else: the experiments and the other models it uses are the
ones it creates, which MLflow makes it MANAGE), not as the admin, so a missing
permission fails here first.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
PIPELINES_USER = "mlflow-pipelines"
# The platform's mlflow_users entry of the pipelines (platform_defaults/defaults/main/mlflow.yml).
PIPELINES_MODEL = "iris-classifier"
PIPELINES_PERMISSION = "EDIT"


def _load_mlflow_server() -> ModuleType:
    """app/tests/mlflow_server.py as the module ``mlflow_server`` (it needs only the standard library)."""
    path = ROOT / "app" / "tests" / "mlflow_server.py"
    spec = importlib.util.spec_from_file_location("mlflow_server", path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # before exec: dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


mlflow_server_module = _load_mlflow_server()


def pipelines_bin(name: str) -> Path:
    """A console script of the pipelines environment (DAGS_TEST_PIPELINES_VENV, else this one)."""
    venv = os.environ.get("DAGS_TEST_PIPELINES_VENV")
    return (Path(venv) / "bin" / name) if venv else Path(sys.executable).parent / name


@dataclass(frozen=True)
class MlflowServer:
    """The shared server (``server``) and the pipelines user's password."""

    server: Any  # mlflow_server.MlflowServer
    pipelines_password: str

    @property
    def uri(self) -> str:
        return self.server.uri

    @property
    def artifacts_dir(self) -> Path:
        return self.server.artifacts_dir

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

    def call(self, method: str, path: str, payload: dict | None = None) -> dict:
        """A REST call as the pipelines user; the decoded JSON answer."""
        return self.server.call(method, path, payload, auth=(PIPELINES_USER, self.pipelines_password))

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


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with mlflow_server_module.running_mlflow(
        tmp_path_factory.mktemp("mlflow"),
        mlflow_bin=pipelines_bin("mlflow"),
        default_permission="NO_PERMISSIONS",
    ) as server:
        # the platform's mlflow_users entry for the pipelines, as the mlflow role reconciles it
        # (files/mlflow-grants.py): the model created by the admin, EDIT on it, nothing else
        password = server.create_user(PIPELINES_USER)
        server.call("POST", "/api/2.0/mlflow/registered-models/create", {"name": PIPELINES_MODEL})
        server.grant(PIPELINES_USER, "registered_model", PIPELINES_MODEL, PIPELINES_PERMISSION)
        yield MlflowServer(server, password)


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
