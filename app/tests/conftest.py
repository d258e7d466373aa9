"""Session fixtures: a real MLflow server with basic auth, real registered models, a real API."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import lab

# MLflow client settings of the test process itself (the admin side that trains and registers).
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "1"
os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"

MODEL = "iris-classifier"
BROKEN_MODEL = "iris-broken"
FAILING_MODEL = "always-fails"
# OCI_MLOPS_SERVED_MODELS of the session's API: the operator's list of the models it serves
# (iris-moving, -half-broken, -concurrent and -churn are registered by test_model_cache.py;
# iris-revoked by test_mlflow_outage.py, which also asks for iris-never-registered: served, but
# never registered).
SERVED_MODELS = (
    MODEL,
    BROKEN_MODEL,
    FAILING_MODEL,
    "iris-moving",
    "iris-half-broken",
    "iris-concurrent",
    "iris-churn",
    "iris-revoked",
    "iris-never-registered",
)
EXPERIMENT = "iris"
REFRESH_SECONDS = 1.0
FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
FAILING_MODEL_CODE = Path(__file__).parent / "models" / "failing_model.py"
MARKER_MODEL_CODE = Path(__file__).parent / "models" / "marker_model.py"
# Registered by a user who is neither the admin nor the API's, under a name the API does not serve.
UNSERVED_MODEL = "not-approved"
UNSERVED_USER = "any-mlflow-user"


@dataclass(frozen=True)
class Registered:
    """What the session registered in MLflow."""

    champion: lab.LoggedModel  # iris-classifier v1, alias champion
    challenger: lab.LoggedModel  # iris-classifier v2, alias challenger
    broken: lab.LoggedModel  # iris-broken v1 (alias champion), model file corrupted
    failing: lab.LoggedModel  # always-fails v1, predict() raises


# The API's named keys: index 0 "tests" (the test client), index 1 "dashboard".
KEY_NAMES = ("tests", "dashboard")


@dataclass(frozen=True)
class ApiServer:
    url: str
    keys: tuple[str, str]
    log_path: Path
    process: subprocess.Popen[bytes]
    key_names: tuple[str, str] = KEY_NAMES

    def headers(self, key_index: int = 0) -> dict[str, str]:
        return {"X-API-Key": self.keys[key_index]}


@pytest.fixture(scope="session")
def mlflow_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lab.MlflowLab]:
    with lab.running_mlflow(tmp_path_factory.mktemp("mlflow")) as server:
        patch = pytest.MonkeyPatch()
        for key, value in server.env(reader=False).items():
            patch.setenv(key, value)
        try:
            yield server
        finally:
            patch.undo()


@pytest.fixture(scope="session")
def registered(mlflow_lab: lab.MlflowLab) -> Registered:
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    champion = lab.log_iris_model(EXPERIMENT, MODEL, c=1.0)
    challenger = lab.log_iris_model(EXPERIMENT, MODEL, c=0.05)
    client.set_registered_model_alias(MODEL, "champion", champion.version)
    client.set_registered_model_alias(MODEL, "challenger", challenger.version)

    broken = lab.log_iris_model(EXPERIMENT, BROKEN_MODEL, c=1.0)
    model_file = (
        mlflow_lab.artifacts_dir
        / broken.experiment_id
        / "models"
        / broken.model_id
        / "artifacts"
        / "model.skops"
    )
    model_file.write_bytes(b"this is not a model")
    client.set_registered_model_alias(BROKEN_MODEL, "champion", broken.version)

    with mlflow.start_run(run_name="always-fails") as run, warnings.catch_warnings():
        # MLflow advises an input example, which this test model does without
        warnings.simplefilter("ignore", UserWarning)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(FAILING_MODEL_CODE),
            signature=infer_signature(pd.DataFrame([[1.0] * len(FEATURES)], columns=FEATURES)),
            registered_model_name=FAILING_MODEL,
            pip_requirements=[],
        )
    failing = lab.LoggedModel(
        model_uri=info.model_uri,
        model_id=info.model_id,
        run_id=run.info.run_id,
        experiment_id=champion.experiment_id,
        name=FAILING_MODEL,
        version=str(info.registered_model_version),
    )
    mlflow_lab.grant_read("experiment", champion.experiment_id)
    for name in (MODEL, BROKEN_MODEL, FAILING_MODEL):
        mlflow_lab.grant_read("registered_model", name)
    return Registered(champion, challenger, broken, failing)


@dataclass(frozen=True)
class Unserved:
    """A model any MLflow user registered: its loader writes ``marker`` when it is loaded."""

    model: lab.LoggedModel
    marker: Path
    user: tuple[str, str]


@pytest.fixture(scope="session")
def unserved(
    mlflow_lab: lab.MlflowLab, registered: Registered, tmp_path_factory: pytest.TempPathFactory
) -> Unserved:
    """UNSERVED_MODEL v1 (alias champion), logged and registered by a new user with no grant.

    The read-only user gets READ on the registered model (the dashboard lists it); the API of
    test_served_models.py reads as a user with READ on everything, as the platform's does.
    """
    import mlflow

    marker = tmp_path_factory.mktemp("marker") / "loader-ran"
    user = (UNSERVED_USER, mlflow_lab.server.create_user(UNSERVED_USER))
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        patch.setenv("MLFLOW_TRACKING_USERNAME", user[0])
        patch.setenv("MLFLOW_TRACKING_PASSWORD", user[1])
        warnings.simplefilter("ignore", UserWarning)  # no input example
        experiment = mlflow.set_experiment("not-approved")
        with mlflow.start_run(run_name="writes-a-marker") as run:
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(MARKER_MODEL_CODE),
                model_config={"marker": str(marker)},
                registered_model_name=UNSERVED_MODEL,
                pip_requirements=[],
            )
        mlflow.MlflowClient().set_registered_model_alias(
            UNSERVED_MODEL, "champion", str(info.registered_model_version)
        )
    marker.unlink(missing_ok=True)  # in case logging loaded it in this process
    mlflow_lab.grant_read("registered_model", UNSERVED_MODEL)
    model = lab.LoggedModel(
        model_uri=info.model_uri,
        model_id=info.model_id,
        run_id=run.info.run_id,
        experiment_id=experiment.experiment_id,
        name=UNSERVED_MODEL,
        version=str(info.registered_model_version),
    )
    return Unserved(model, marker, user)


@contextmanager
def running_api(
    mlflow_lab: lab.MlflowLab, log_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[ApiServer]:
    """``oci-mlops-api`` (the console script) as the read-only MLflow user, 1 s alias refresh,
    ``MODEL@champion`` preloaded (``extra_env`` overrides); yields once ``/ready`` is 200."""
    keys = (secrets.token_urlsafe(24), secrets.token_urlsafe(24))
    port = lab.free_port()
    log_path = log_dir / "api.log"
    env = {
        **os.environ,
        **mlflow_lab.env(reader=True),
        "OCI_MLOPS_API_KEYS": ",".join(f"{n}={k}" for n, k in zip(KEY_NAMES, keys, strict=True)),
        "OCI_MLOPS_SERVED_MODELS": ",".join(SERVED_MODELS),
        "OCI_MLOPS_PRELOAD_MODELS": f"{MODEL}@champion",
        "OCI_MLOPS_ALIAS_REFRESH_SECONDS": str(REFRESH_SECONDS),
        "OCI_MLOPS_API_PORT": str(port),
        **(extra_env or {}),
    }
    process = lab.start_logged_process([lab.venv_bin("oci-mlops-api")], env, log_path)
    server = ApiServer(f"http://127.0.0.1:{port}", keys, log_path, process)
    try:
        lab.wait_http_ok(f"{server.url}/health", 60, process)
        lab.wait_http_ok(f"{server.url}/ready", 60, process)
        yield server
    finally:
        lab.stop_process(process)


@pytest.fixture(scope="session")
def api_server(
    mlflow_lab: lab.MlflowLab, registered: Registered, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """The API every test module shares (see ``running_api``)."""
    with running_api(mlflow_lab, tmp_path_factory.mktemp("api")) as server:
        yield server


@pytest.fixture
def api(api_server: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_server.url, timeout=60.0) as client:
        yield client


def wait_for(predicate: object, timeout_s: float, interval_s: float = 0.1) -> float:
    """Call ``predicate`` until it returns true; return the seconds that took."""
    assert callable(predicate)
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if predicate():
            return time.monotonic() - started
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s")


def metric_sum(text: str, name: str, **labels: str) -> float:
    """The sum of the samples ``name`` whose labels include ``labels`` (0 if there is none)."""
    return sum(
        float(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def log_entries(log_path: Path) -> list[dict[str, object]]:
    """The complete JSON lines of a process log (other lines skipped; a last line
    still being written, without its newline, too)."""
    lines = log_path.read_text().split("\n")[:-1]
    return [json.loads(line) for line in lines if line.startswith("{")]


def log_entry(log_path: Path, request_id: str, timeout: float = 15.0) -> dict[str, object]:
    """The one JSON log line of request ``request_id`` of a running server, waiting for it.

    The access line is written after the response is sent: on a loaded machine
    the client read the log first and found nothing (`make test`, app-test
    beside molecule/site's converge, 2026-12-02)."""
    found = wait_for_log_entries(log_path, lambda e: e.get("request_id") == request_id, 1, timeout)
    assert len(found) == 1, f"{len(found)} log lines of {request_id!r} within {timeout} s"
    return found[0]


def wait_for_log_entries(
    log_path: Path, select: Callable[[dict[str, object]], bool], count: int, timeout: float = 15.0
) -> list[dict[str, object]]:
    """The JSON log lines ``select`` picks, once there are ``count`` of them (or at ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in log_entries(log_path) if select(e)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` whose labels include ``labels`` (exposition text)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    raise AssertionError(f"{name}{labels} not in /metrics")
