"""The iris_pipeline task functions against a real MLflow server (pipelines environment)."""

from __future__ import annotations

import sys
import uuid

import pytest
from conftest import DAGS

sys.path.insert(0, str(DAGS))

import mlflow  # noqa: E402
import pandas as pd  # noqa: E402
from iris_pipeline import CHAMPION_ALIAS, DECISION_METRIC, MODEL_NAME, inference, training  # noqa: E402


def run_training(model_name: str, model_type: str = "logistic_regression") -> dict:
    """The iris_training DAG's steps in order, as its tasks chain them."""
    training.validate_data()
    trained = training.train(model_type, tags={"airflow_dag_id": "iris_training", "airflow_run_id": "test"})
    metrics = training.evaluate(trained["run_id"], trained["model_uri"])
    registered = training.register(trained["run_id"], trained["model_uri"], metrics, model_name)
    decision = training.decide_champion(trained["run_id"], registered["version"], metrics, model_name)
    return {"trained": trained, "metrics": metrics, "registered": registered, "decision": decision}


# --- validation ------------------------------------------------------------------


def test_bundled_iris_passes_validation():
    summary = training.validate_data()
    assert summary["rows"] == 150
    assert summary["columns"] == [*training.FEATURES, training.TARGET]
    assert summary["class_counts"] == {"setosa": 50, "versicolor": 50, "virginica": 50}


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda f: f.drop(columns=["petal width (cm)"]), "columns"),
        (lambda f: f.assign(**{"sepal length (cm)": f["sepal length (cm)"].astype(str)}), "not float"),
        (lambda f: f.assign(target=f["target"].astype(float)), "not integer"),
        (lambda f: f.assign(**{"petal length (cm)": f["petal length (cm)"].where(f.index != 3)}), "missing values"),
        (lambda f: f.assign(target=f["target"].replace(2, 7)), "class labels"),
        (lambda f: f.head(20), "fewer than"),
    ],
    ids=["column", "dtype", "target-dtype", "nan", "labels", "rows"],
)
def test_schema_problems_fail_validation(monkeypatch, mutate, problem):
    frame = mutate(training.load_dataset())
    assert any(problem in p for p in training.check_schema(frame)), training.check_schema(frame)
    monkeypatch.setattr(training, "load_dataset", lambda: frame)
    with pytest.raises(ValueError, match=problem):
        training.validate_data()


def test_unknown_model_type_is_refused():
    with pytest.raises(ValueError, match="model_type"):
        training.build_model("xgboost", 1.0, 0)


def test_tasks_refuse_to_run_without_a_tracking_server(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(RuntimeError, match="MLFLOW_TRACKING_URI"):
        training.train("dummy")


# --- champion decisions ------------------------------------------------------------


def test_first_run_promotes_then_a_losing_run_and_a_tie_keep_the_champion(mlflow_env):
    first = run_training(MODEL_NAME)
    assert first["metrics"][DECISION_METRIC] > 0.9
    assert first["decision"]["champion_decision"] == "promoted"
    assert first["decision"]["champion_previous_version"] == ""
    assert mlflow_env.champion_version(MODEL_NAME) == first["registered"]["version"] == "1"
    tags = mlflow_env.run_tags(first["trained"]["run_id"])
    assert tags["champion_decision"] == "promoted"
    assert tags["airflow_dag_id"] == "iris_training"

    loser = run_training(MODEL_NAME, "dummy")
    assert loser["metrics"][DECISION_METRIC] == pytest.approx(1 / 3, abs=0.01)
    assert loser["decision"]["champion_decision"] == "kept"
    assert mlflow_env.champion_version(MODEL_NAME) == "1"
    tags = mlflow_env.run_tags(loser["trained"]["run_id"])
    assert tags["champion_decision"] == "kept"
    assert tags["champion_metric"] == DECISION_METRIC
    assert float(tags["champion_candidate_value"]) == pytest.approx(loser["metrics"][DECISION_METRIC])
    assert float(tags["champion_previous_value"]) == pytest.approx(first["metrics"][DECISION_METRIC])
    assert tags["champion_previous_version"] == "1"
    assert tags["champion_version"] == "1"

    # same data, split and model: an equal score, and a tie keeps the champion
    tie = run_training(MODEL_NAME)
    assert tie["metrics"][DECISION_METRIC] == first["metrics"][DECISION_METRIC]
    assert tie["decision"]["champion_decision"] == "kept"
    assert mlflow_env.champion_version(MODEL_NAME) == "1"

    client = mlflow.MlflowClient()
    versions = {v.version: v for v in client.search_model_versions(f"name='{MODEL_NAME}'")}
    assert set(versions) == {"1", "2", "3"}
    assert versions["2"].tags["champion_decision"] == "kept"
    assert float(versions["1"].tags[DECISION_METRIC]) == pytest.approx(first["metrics"][DECISION_METRIC])


def test_retried_register_and_decide_do_not_add_versions_or_flip_the_decision(mlflow_env):
    name = f"iris-retry-{uuid.uuid4().hex[:8]}"
    first = run_training(name)
    again = training.register(first["trained"]["run_id"], first["trained"]["model_uri"], first["metrics"], name)
    assert again["version"] == first["registered"]["version"] == "1"
    decision = training.decide_champion(first["trained"]["run_id"], "1", first["metrics"], name)
    assert decision["champion_decision"] == "promoted"
    assert mlflow_env.champion_version(name) == "1"
    assert len(mlflow.MlflowClient().search_model_versions(f"name = '{name}'")) == 1


def test_a_winning_run_moves_the_alias(mlflow_env):
    name = f"iris-win-{uuid.uuid4().hex[:8]}"
    weak = run_training(name, "dummy")
    assert weak["decision"]["champion_decision"] == "promoted"  # the first version always wins
    strong = run_training(name)
    assert strong["decision"]["champion_decision"] == "promoted"
    assert strong["decision"]["champion_previous_version"] == weak["registered"]["version"]
    assert mlflow_env.champion_version(name) == strong["registered"]["version"] == "2"


def test_registered_versions_carry_signature_and_input_example(mlflow_env):
    version = mlflow.MlflowClient().get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS)
    info = mlflow.models.get_model_info(f"models:/{MODEL_NAME}/{version.version}")
    assert [c.name for c in info.signature.inputs.inputs] == training.FEATURES
    assert info.saved_input_example_info is not None
    example = mlflow.models.Model.load(f"models:/{MODEL_NAME}/{version.version}").load_input_example(
        mlflow.artifacts.download_artifacts(f"models:/{MODEL_NAME}/{version.version}")
    )
    assert list(example.columns) == training.FEATURES


# --- batch inference -------------------------------------------------------------


def test_batch_inference_scores_with_the_champion_and_stores_the_predictions(mlflow_env, tmp_path):
    champion = inference.resolve_champion()
    assert champion["version"] == mlflow_env.champion_version(MODEL_NAME)
    assert champion["model_uri"] == f"models:/{MODEL_NAME}/{champion['version']}"

    result = inference.score_batch(champion, tags={"airflow_dag_id": "iris_batch_inference"})
    assert result["rows"] == 150

    run = mlflow.get_run(result["run_id"])
    assert run.data.metrics["rows_in"] == run.data.metrics["rows_out"] == 150
    for timing in ("model_load_seconds", "predict_seconds", "total_seconds"):
        assert 0 <= run.data.metrics[timing] < 300
    assert run.data.params["model_version"] == champion["version"]

    csv = mlflow.artifacts.download_artifacts(result["artifact_uri"], dst_path=str(tmp_path))
    predictions = pd.read_csv(csv)
    assert list(predictions.columns) == [*training.FEATURES, "prediction"]
    assert len(predictions) == 150
    assert set(predictions["prediction"]) <= {0, 1, 2}
    assert (predictions["prediction"] == training.load_dataset()["target"]).mean() > 0.9
    # served artifacts: the file is in the server's artifact store, not on the client
    stored = list(mlflow_env.artifacts_dir.rglob("predictions.csv"))
    assert len(stored) == 1


def test_batch_inference_limit_and_missing_alias(mlflow_env):
    result = inference.score_batch(inference.resolve_champion(), limit=10)
    assert result["rows"] == 10
    with pytest.raises(mlflow.exceptions.MlflowException):
        inference.resolve_champion(MODEL_NAME, "no-such-alias")
