"""iris_batch_inference: score a batch with the `champion` version, store the predictions in MLflow.

Same execution model as iris_training (pipelines virtualenv through
@task.external_python, MLflow settings from the environment). The CSV lands
as the run artifact predictions/predictions.csv of experiment
iris-batch-inference, with rows_in/rows_out and timings as metrics.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Param, dag, task

PIPELINES_PYTHON = os.environ.get("OCI_MLOPS_PIPELINES_PYTHON", "/opt/airflow/pipelines-venv/bin/python")
DAGS_DIR = os.path.dirname(os.path.abspath(__file__))
RUN_TAGS = {"airflow_dag_id": "{{ dag.dag_id }}", "airflow_run_id": "{{ run_id }}"}


@dag(
    dag_id="iris_batch_inference",
    description="Score a batch with models:/iris-classifier@champion; predictions as an MLflow artifact",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mlops", "iris", "inference"],
    params={
        "registered_model_name": Param("iris-classifier", type="string", minLength=1),
        "alias": Param("champion", type="string", minLength=1),
        "limit": Param(0, type="integer", minimum=0, description="rows to score; 0 = the whole batch"),
    },
    default_args={"retries": 1, "retry_delay": pendulum.duration(seconds=30)},
)
def iris_batch_inference() -> None:
    @task.external_python(python=PIPELINES_PYTHON, expect_airflow=False)
    def resolve_champion(dags_dir: str, model_name: str, alias: str) -> dict:
        import sys

        sys.path.insert(0, dags_dir)
        from iris_pipeline import inference

        return inference.resolve_champion(model_name, alias)

    @task.external_python(python=PIPELINES_PYTHON, expect_airflow=False)
    def score_batch(dags_dir: str, champion: dict, limit: str, tags: dict) -> dict:
        import sys

        sys.path.insert(0, dags_dir)
        from iris_pipeline import inference

        return inference.score_batch(champion, int(limit), tags=tags)

    champion = resolve_champion(DAGS_DIR, "{{ params.registered_model_name }}", "{{ params.alias }}")
    score_batch(DAGS_DIR, champion, "{{ params.limit }}", RUN_TAGS)


iris_batch_inference()
