"""iris_training: validate the iris data, train, evaluate, register, move `champion` only on a win.

The tasks run in the pipelines virtualenv (OCI_MLOPS_PIPELINES_PYTHON, default
/opt/airflow/pipelines-venv/bin/python) with @task.external_python: their
callables are self-contained (imports inside) and call iris_pipeline.training,
published with this file. MLflow client settings come from the scheduler's
environment (MLFLOW_TRACKING_URI/USERNAME/PASSWORD). Params: dags/README.md.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Param, dag, task

PIPELINES_PYTHON = os.environ.get("OCI_MLOPS_PIPELINES_PYTHON", "/opt/airflow/pipelines-venv/bin/python")
# Not resolved: on the hosts this is the DAG sync's `current` symlink, swapped atomically.
DAGS_DIR = os.path.dirname(os.path.abspath(__file__))
RUN_TAGS = {"airflow_dag_id": "{{ dag.dag_id }}", "airflow_run_id": "{{ run_id }}"}
SPLIT = {"test_size": "{{ params.test_size }}", "random_state": "{{ params.random_state }}"}


@dag(
    dag_id="iris_training",
    description="Train an iris classifier, register it, promote it to champion when it wins",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # one run at a time: two runs deciding the champion together could both win
    max_active_runs=1,
    tags=["mlops", "iris", "training"],
    params={
        "model_type": Param(
            "logistic_regression",
            enum=["logistic_regression", "dummy"],
            description="dummy = DummyClassifier(most_frequent): a run that loses on purpose",
        ),
        "c": Param(1.0, type="number", exclusiveMinimum=0, description="LogisticRegression C"),
        "test_size": Param(0.3, type="number", exclusiveMinimum=0, exclusiveMaximum=1),
        "random_state": Param(42, type="integer"),
        "registered_model_name": Param("iris-classifier", type="string", minLength=1),
    },
    default_args={"retries": 1, "retry_delay": pendulum.duration(seconds=30)},
)
def iris_training() -> None:
    @task.external_python(python=PIPELINES_PYTHON, expect_airflow=False)
    def validate_data(dags_dir: str) -> dict:
        import sys

        sys.path.insert(0, dags_dir)
        from iris_pipeline import training

        return training.validate_data()

    @task.external_python(python=PIPELINES_PYTHON, expect_airflow=False)
    def train(
        dags_dir: str, validated: dict, model_type: str, c: str, test_size: str, random_state: str, tags: dict
    ) -> dict:
        import sys

        sys.path.insert(0, dags_dir)
        from iris_pipeline import training

        return training.train(model_type, float(c), float(test_size), int(random_state), tags=tags)

    @task.external_python(python=PIPELINES_PYTHON, expect_airflow=False)
    def evaluate(dags_dir: str, trained: dict, test_size: str, random_state: str) -> dict:
        import sys

        sys.path.insert(0, dags_dir)
        from iris_pipeline import training

        return training.evaluate(trained["run_id"], trained["model_uri"], float(test_size), int(random_state))

    @task.external_python(python=PIPELINES_PYTHON, expect_airflow=False)
    def register(dags_dir: str, trained: dict, metrics: dict, model_name: str) -> dict:
        import sys

        sys.path.insert(0, dags_dir)
        from iris_pipeline import training

        return training.register(trained["run_id"], trained["model_uri"], metrics, model_name)

    @task.external_python(python=PIPELINES_PYTHON, expect_airflow=False)
    def decide_champion(dags_dir: str, trained: dict, registered: dict, metrics: dict) -> dict:
        import sys

        sys.path.insert(0, dags_dir)
        from iris_pipeline import training

        return training.decide_champion(trained["run_id"], registered["version"], metrics, registered["model_name"])

    validated = validate_data(DAGS_DIR)
    trained = train(DAGS_DIR, validated, "{{ params.model_type }}", "{{ params.c }}", tags=RUN_TAGS, **SPLIT)
    metrics = evaluate(DAGS_DIR, trained, **SPLIT)
    registered = register(DAGS_DIR, trained, metrics, "{{ params.registered_model_name }}")
    decide_champion(DAGS_DIR, trained, registered, metrics)


iris_training()
