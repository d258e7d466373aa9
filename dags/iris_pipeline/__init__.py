"""Code shared by the iris DAGs (iris_training, iris_batch_inference).

Nothing here imports Airflow: the functions run in the pipelines virtualenv
(/opt/airflow/pipelines-venv on the Airflow hosts) through
``@task.external_python``, and the DAG files only import this package inside
their task callables. MLflow is reached through its REST API with the client
settings of the environment (MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME,
MLFLOW_TRACKING_PASSWORD), never through its database.
"""

from __future__ import annotations

import os

#: Registered model the training DAG registers versions of and the batch
#: inference DAG scores with.
MODEL_NAME = "iris-classifier"
#: Alias of the version that serves (API, batch inference).
CHAMPION_ALIAS = "champion"
#: Experiments the two DAGs log their runs to.
TRAINING_EXPERIMENT = "iris-training"
INFERENCE_EXPERIMENT = "iris-batch-inference"
#: The metric champion decisions compare (logged on the training run and as a
#: tag of the model version); higher is better.
DECISION_METRIC = "holdout_accuracy"


def require_tracking_uri() -> str:
    """The MLflow tracking URI of the environment; fail instead of logging to ./mlruns."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri.startswith(("http://", "https://")):
        raise RuntimeError(
            "MLFLOW_TRACKING_URI must be the MLflow server's http(s) URL "
            f"(got {uri!r}); the airflow role sets it in /etc/airflow/pipelines.env"
        )
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return uri
