"""A throwaway MLflow 3 tracking server with basic auth, plus helpers to train and register models.

Shared by the test-suite (tests/conftest.py) and the benchmark (bench/predict_bench.py). The server
is a real ``mlflow server`` subprocess on 127.0.0.1 with a sqlite backend, a local artifact
directory, ``--app-name basic-auth`` and ``default_permission = NO_PERMISSIONS``, so the read-only
user sees exactly what it was granted.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

ADMIN_USER = "admin"
READER_USER = "model-reader"
SERVER_START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http_ok(
    url: str, timeout_s: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll ``url`` until it answers 200; fail early if ``process`` exits."""
    deadline = time.monotonic() + timeout_s
    last_error = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code == 200:
                return
            last_error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last_error = repr(exc)
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout_s:.0f}s: {last_error}")


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """SIGTERM the process group started for ``process``, SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout_s)


def venv_bin(name: str) -> str:
    """Path of a console script installed next to the running interpreter."""
    return str(Path(sys.executable).parent / name)


def start_logged_process(
    argv: list[str], env: Mapping[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own process group with stdout+stderr appended to ``log_path``."""
    log: IO[bytes] = log_path.open("ab")
    try:
        return subprocess.Popen(
            argv, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        log.close()


@dataclass(frozen=True)
class MlflowLab:
    """A running MLflow server and the credentials of its admin and read-only users."""

    uri: str
    workdir: Path
    admin_password: str
    reader_password: str
    process: subprocess.Popen[bytes]

    @property
    def artifacts_dir(self) -> Path:
        return self.workdir / "artifacts"

    def env(self, *, reader: bool) -> dict[str, str]:
        """MLflow client variables for the read-only user (``reader=True``) or the admin."""
        return {
            "MLFLOW_TRACKING_URI": self.uri,
            "MLFLOW_TRACKING_USERNAME": READER_USER if reader else ADMIN_USER,
            "MLFLOW_TRACKING_PASSWORD": self.reader_password if reader else self.admin_password,
        }

    def admin_post(self, path: str, payload: Mapping[str, object]) -> httpx.Response:
        response = httpx.post(
            f"{self.uri}{path}",
            json=dict(payload),
            auth=(ADMIN_USER, self.admin_password),
            timeout=30.0,
        )
        response.raise_for_status()
        return response

    def grant_read(self, resource_type: str, resource_id: str) -> None:
        """Give the read-only user READ on an experiment (by id) or a registered model (by name)."""
        self.admin_post(
            "/api/3.0/mlflow/users/permissions/grant",
            {
                "username": READER_USER,
                "resource_type": resource_type,
                "resource_id": resource_id,
                "permission": "READ",
            },
        )


@contextmanager
def running_mlflow(workdir: Path) -> Iterator[MlflowLab]:
    """Start an MLflow server with basic auth in ``workdir`` and create the read-only user."""
    workdir.mkdir(parents=True, exist_ok=True)
    admin_password = secrets.token_urlsafe(18)
    reader_password = secrets.token_urlsafe(18)
    auth_ini = workdir / "basic_auth.ini"
    auth_ini.write_text(
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = sqlite:///{workdir / 'basic_auth.db'}\n"
        f"admin_username = {ADMIN_USER}\n"
        f"admin_password = {admin_password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # cache verified credentials: without it every request pays a PBKDF2 hash (~0.3 s)
        "auth_cache_ttl_seconds = 300\n"
    )
    auth_ini.chmod(0o600)
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(auth_ini),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        # basic-auth refuses to start without a static CSRF secret
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(32),
    }
    process = start_logged_process(
        [
            venv_bin("mlflow"),
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
            "--artifacts-destination",
            str(workdir / "artifacts"),
        ],
        env,
        workdir / "mlflow-server.log",
    )
    lab = MlflowLab(
        uri=f"http://127.0.0.1:{port}",
        workdir=workdir,
        admin_password=admin_password,
        reader_password=reader_password,
        process=process,
    )
    try:
        wait_http_ok(f"{lab.uri}/health", SERVER_START_TIMEOUT_S, process)
        lab.admin_post(
            "/api/2.0/mlflow/users/create",
            {"username": READER_USER, "password": reader_password},
        )
        yield lab
    finally:
        stop_process(process)


@dataclass(frozen=True)
class LoggedModel:
    """A model logged in a run and registered as a version of a registered model."""

    model_uri: str
    model_id: str
    run_id: str
    experiment_id: str
    name: str
    version: str


def log_iris_model(experiment_name: str, model_name: str, *, c: float) -> LoggedModel:
    """Train a LogisticRegression on sklearn's bundled iris data and register it.

    Uses the MLflow client settings of the current environment (the admin's credentials).
    """
    import mlflow
    import sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split

    features, target = load_iris(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=0.3, random_state=0, stratify=target
    )
    experiment = mlflow.set_experiment(experiment_name)
    with mlflow.start_run(run_name=f"logreg-C{c:g}") as run:
        model = LogisticRegression(C=c, max_iter=500).fit(x_train, y_train)
        predicted = model.predict(x_test)
        mlflow.log_params({"C": c, "max_iter": 500})
        mlflow.log_metrics(
            {
                "accuracy": float(accuracy_score(y_test, predicted)),
                "f1_macro": float(f1_score(y_test, predicted, average="macro")),
            }
        )
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(x_train, model.predict(x_train)),
            input_example=x_train.head(3),
            registered_model_name=model_name,
            # explicit requirements skip MLflow's slow requirement inference
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
    return LoggedModel(
        model_uri=info.model_uri,
        model_id=info.model_id,
        run_id=run.info.run_id,
        experiment_id=experiment.experiment_id,
        name=model_name,
        version=str(info.registered_model_version),
    )


def register_again(model: LoggedModel) -> LoggedModel:
    """Register the same logged model as a new version of its registered model."""
    import mlflow

    version = mlflow.register_model(model.model_uri, model.name)
    return LoggedModel(
        model_uri=model.model_uri,
        model_id=model.model_id,
        run_id=model.run_id,
        experiment_id=model.experiment_id,
        name=model.name,
        version=str(version.version),
    )
