"""molecule/site only, never in dags/: what a DAG author's task sees of the platform (issue #15 point 3).

tests/test_1d_task_secrets.py publishes this file next to dags/ and triggers
it. Each task returns its whole environment (os.environ), hex-encoded so that
Airflow's secrets masker cannot hide a value the test looks for, and what it
can read of the airflow host's configuration files:
- in_process: a plain @task, in the task process the scheduler's LocalExecutor
  worker forks (the Airflow virtualenv);
- pipelines: @task.external_python in the pipelines virtualenv, as the
  product's DAGs run (a child of the task process).
"""

import os

import pendulum
from airflow.sdk import dag, task

PIPELINES_PYTHON = os.environ.get("OCI_MLOPS_PIPELINES_PYTHON", "/opt/airflow/pipelines-venv/bin/python")


@dag(
    dag_id="oci_mlops_task_env",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["molecule-site"],
)
def oci_mlops_task_env():
    @task
    def in_process():
        import json
        import os

        readable = {}
        for path in ("/etc/airflow/dag-sync.env", "/etc/airflow/airflow.env", "/etc/airflow/credentials"):
            try:
                if os.path.isdir(path):
                    os.listdir(path)
                else:
                    open(path, encoding="utf-8").close()
                readable[path] = True
            except OSError:
                readable[path] = False
        return json.dumps({"environ": dict(os.environ), "readable": readable}).encode().hex()

    @task.external_python(python=PIPELINES_PYTHON, expect_airflow=False)
    def pipelines():
        import json
        import os

        return json.dumps({"environ": dict(os.environ), "readable": {}}).encode().hex()

    in_process() >> pipelines()


oci_mlops_task_env()
