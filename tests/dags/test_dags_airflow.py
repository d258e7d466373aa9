"""dags/ in a real Airflow (the airflow role's): every file imports, the two DAGs have their tasks, and run end to end.

Runs in the Airflow environment of `make dags-test`, which sets AIRFLOW_HOME
(a fresh directory, sqlite metadata database), the DAGs folder and
OCI_MLOPS_PIPELINES_PYTHON (the pipelines environment's python, the external
python of every task).
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import DAGS

TRAINING_TASKS = {"validate_data", "train", "evaluate", "register", "decide_champion"}
INFERENCE_TASKS = {"resolve_champion", "score_batch"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_every_dag_file_imports(dagbag):
    assert dagbag.import_errors == {}
    parsed = {Path(d.fileloc).name for d in dagbag.dags.values()}
    assert parsed == {p.name for p in DAGS.glob("*.py")}, "every .py at the top of dags/ is a DAG file"


def test_the_package_is_not_parsed_as_dags():
    from airflow.utils.file import list_py_file_paths

    listed = {Path(p).relative_to(DAGS).as_posix() for p in list_py_file_paths(str(DAGS))}
    assert listed == {p.name for p in DAGS.glob("*.py")}, listed


def test_the_two_dags_and_their_tasks(dagbag):
    training = dagbag.dags["iris_training"]
    inference = dagbag.dags["iris_batch_inference"]
    assert set(training.task_ids) == TRAINING_TASKS
    assert set(inference.task_ids) == INFERENCE_TASKS
    assert training.get_task("decide_champion").upstream_task_ids == {"train", "register", "evaluate"}
    assert inference.get_task("score_batch").upstream_task_ids == {"resolve_champion"}
    assert training.max_active_runs == 1
    assert training.params["model_type"] == "logistic_regression"
    assert training.params["registered_model_name"] == "iris-classifier"
    assert inference.params["alias"] == "champion"
    for dag in (training, inference):
        assert dag.schedule is None or dag.timetable.summary == "None"
        for task in dag.tasks:
            assert task.task_type == "_PythonExternalDecoratedOperator"
            assert task.python == os.environ["OCI_MLOPS_PIPELINES_PYTHON"]


def test_a_bad_model_type_is_refused_by_the_params(dagbag):
    params = copy.deepcopy(dagbag.dags["iris_training"].params)
    params.validate()
    with pytest.raises(Exception, match="xgboost"):
        params["model_type"] = "xgboost"
        params.validate()


# --- end to end through Airflow (dag.test(): scheduler-less run, real tasks) --------


@pytest.fixture(scope="module")
def airflow_db(request):
    """A migrated sqlite metadata database (fresh AIRFLOW_HOME), migrated while the MLflow server starts."""
    migrate = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "airflow", "db", "migrate"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    request.getfixturevalue("mlflow_env")
    output, _ = migrate.communicate(timeout=600)
    assert migrate.returncode == 0, output.decode(errors="replace")[-3000:]


def _run(dagbag, dag_id: str, conf: dict):
    dagrun = dagbag.dags[dag_id].test(run_conf=conf)
    return dagrun, {ti.task_id: ti for ti in dagrun.get_task_instances()}


def test_dags_run_through_airflow_against_mlflow(dagbag, airflow_db, mlflow_env):
    name = f"iris-airflow-{uuid.uuid4().hex[:8]}"
    first, tis = _run(dagbag, "iris_training", {"registered_model_name": name})
    assert first.state == "success", {k: ti.state for k, ti in tis.items()}
    assert mlflow_env.champion_version(name) == "1"
    decision = tis["decide_champion"].xcom_pull(task_ids="decide_champion")
    assert decision["champion_decision"] == "promoted"

    loser, tis = _run(dagbag, "iris_training", {"registered_model_name": name, "model_type": "dummy"})
    assert loser.state == "success"
    decision = tis["decide_champion"].xcom_pull(task_ids="decide_champion")
    assert decision["champion_decision"] == "kept"
    assert mlflow_env.champion_version(name) == "1"
    run_id = tis["train"].xcom_pull(task_ids="train")["run_id"]
    tags = mlflow_env.run_tags(run_id)
    assert tags["champion_decision"] == "kept"
    assert tags["airflow_dag_id"] == "iris_training"
    assert tags["airflow_run_id"] == loser.run_id

    scored, tis = _run(dagbag, "iris_batch_inference", {"registered_model_name": name, "limit": 25})
    assert scored.state == "success"
    result = tis["score_batch"].xcom_pull(task_ids="score_batch")
    assert result["rows"] == 25
    assert result["model_version"] == "1"
    assert list(mlflow_env.artifacts_dir.rglob("predictions.csv"))
