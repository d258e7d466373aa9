"""A throwaway MLflow 3 tracking server with basic auth, plus helpers to train and register models.

Shared by the test-suite (tests/conftest.py) and the benchmark (bench/predict_bench.py). The server
(tests/mlflow_server.py, which the DAG tests use too) is a real ``mlflow server`` subprocess on
127.0.0.1 with a sqlite backend, a local artifact directory, ``--app-name basic-auth`` and
``default_permission = NO_PERMISSIONS``, so the read-only user sees exactly what it was granted.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests import mlflow_server
from tests.mlflow_server import (
    ADMIN_USER,
    MlflowServer,
    free_port,
    start_logged_process,
    stop_process,
    wait_http_ok,
)

__all__ = [
    "ADMIN_USER",
    "READER_USER",
    "LoggedModel",
    "MlflowLab",
    "free_port",
    "log_iris_model",
    "log_sklearn_model",
    "logged",
    "register_again",
    "running_mlflow",
    "start_logged_process",
    "stop_process",
    "venv_bin",
    "wait_http_ok",
]

READER_USER = "model-reader"


def venv_bin(name: str) -> str:
    """Path of a console script installed next to the running interpreter."""
    return str(Path(sys.executable).parent / name)


@dataclass(frozen=True)
class MlflowLab:
    """A running MLflow server and the credentials of its admin and read-only users."""

    server: MlflowServer
    reader_password: str

    @property
    def uri(self) -> str:
        return self.server.uri

    @property
    def artifacts_dir(self) -> Path:
        return self.server.artifacts_dir

    def env(self, *, reader: bool) -> dict[str, str]:
        """MLflow client variables for the read-only user (``reader=True``) or the admin."""
        return {
            "MLFLOW_TRACKING_URI": self.uri,
            "MLFLOW_TRACKING_USERNAME": READER_USER if reader else ADMIN_USER,
            "MLFLOW_TRACKING_PASSWORD": (
                self.reader_password if reader else self.server.admin_password
            ),
        }

    def grant_read(self, resource_type: str, resource_id: str) -> None:
        """Give the read-only user READ on an experiment (by id) or a registered model (by name)."""
        self.server.grant(READER_USER, resource_type, resource_id, "READ")


@contextmanager
def running_mlflow(workdir: Path) -> Iterator[MlflowLab]:
    """Start an MLflow server with basic auth in ``workdir`` and create the read-only user."""
    with mlflow_server.running_mlflow(
        workdir, mlflow_bin=Path(venv_bin("mlflow")), default_permission="NO_PERMISSIONS"
    ) as server:
        yield MlflowLab(server, server.create_user(READER_USER))


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
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split

    features, target = load_iris(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=0.3, random_state=0, stratify=target
    )
    mlflow.set_experiment(experiment_name)
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
        info = log_sklearn_model(model, x_train, model_name)
    return logged(info, run, model_name)


def log_sklearn_model(model: Any, features: Any, model_name: str) -> Any:
    """Log a fitted sklearn ``model`` in the active run, with the signature inferred from its
    training ``features`` (a DataFrame) and their first rows as input example, and register it as
    ``model_name``; MLflow's ``ModelInfo``."""
    import mlflow
    import sklearn
    from mlflow.models import infer_signature

    return mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(features, model.predict(features)),
        input_example=features.head(3),
        registered_model_name=model_name,
        # explicit requirements skip MLflow's slow requirement inference
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )


def logged(info: Any, run: Any, model_name: str) -> LoggedModel:
    """The :class:`LoggedModel` of ``info`` (a ``ModelInfo``), logged in ``run`` and registered
    as ``model_name``."""
    return LoggedModel(
        model_uri=info.model_uri,
        model_id=info.model_id,
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
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
