"""The steps of the iris_training DAG: validate, train, evaluate, register, decide the champion.

Each step is a plain function of plain arguments returning a small dict (the
XCom of its task), so the DAG's tasks can run them in the pipelines
virtualenv and the tests can call them directly. The dataset is scikit-learn's
bundled iris table (no download), split the same way in every step
(stratified, ``test_size`` and ``random_state`` from the DAG params).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from iris_pipeline import (
    CHAMPION_ALIAS,
    DECISION_METRIC,
    MODEL_NAME,
    TRAINING_EXPERIMENT,
    require_tracking_uri,
)

if TYPE_CHECKING:
    import pandas as pd

FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
TARGET = "target"
CLASS_LABELS = {0: "setosa", 1: "versicolor", 2: "virginica"}
MODEL_TYPES = ("logistic_regression", "dummy")
MIN_ROWS = 100
#: How the decision compares: the candidate must be strictly better; a tie keeps the champion.
DECISION_RULE = f"promote when {DECISION_METRIC} > champion's; ties keep the champion"


def load_dataset() -> pd.DataFrame:
    """The iris table shipped with scikit-learn: 4 float features and the integer target."""
    from sklearn.datasets import load_iris

    return load_iris(as_frame=True).frame


def check_schema(frame: pd.DataFrame) -> list[str]:
    """Every problem of ``frame`` against the expected schema (empty when it is valid)."""
    import pandas as pd

    problems = []
    if list(frame.columns) != [*FEATURES, TARGET]:
        problems.append(f"columns {list(frame.columns)} != {[*FEATURES, TARGET]}")
    for column in FEATURES:
        if column in frame and not pd.api.types.is_float_dtype(frame[column]):
            problems.append(f"feature {column!r} has dtype {frame[column].dtype}, not float")
    if TARGET in frame and not pd.api.types.is_integer_dtype(frame[TARGET]):
        problems.append(f"target has dtype {frame[TARGET].dtype}, not integer")
    missing = int(frame.isna().sum().sum())
    if missing:
        problems.append(f"{missing} missing values")
    if TARGET in frame:
        labels = set(frame[TARGET].dropna().unique().tolist())
        if labels != set(CLASS_LABELS):
            problems.append(f"class labels {sorted(labels)} != {sorted(CLASS_LABELS)}")
    if len(frame) < MIN_ROWS:
        problems.append(f"{len(frame)} rows, fewer than {MIN_ROWS}")
    return problems


def validate_data() -> dict[str, Any]:
    """Load the dataset and check its schema; raise ValueError listing every problem."""
    frame = load_dataset()
    problems = check_schema(frame)
    if problems:
        raise ValueError("iris dataset failed validation: " + "; ".join(problems))
    counts = frame[TARGET].value_counts().sort_index()
    return {
        "rows": len(frame),
        "columns": list(frame.columns),
        "class_counts": {CLASS_LABELS[int(k)]: int(v) for k, v in counts.items()},
    }


def split(test_size: float, random_state: int) -> tuple[Any, Any, Any, Any]:
    """x_train, x_test, y_train, y_test: stratified and reproducible."""
    from sklearn.model_selection import train_test_split

    frame = load_dataset()
    return train_test_split(
        frame[FEATURES],
        frame[TARGET],
        test_size=float(test_size),
        random_state=int(random_state),
        stratify=frame[TARGET],
    )


def build_model(model_type: str, c: float, random_state: int) -> Any:
    """``logistic_regression`` (the real model) or ``dummy`` (most frequent class: a run that loses)."""
    if model_type == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=float(c), max_iter=500, random_state=int(random_state))
    if model_type == "dummy":
        from sklearn.dummy import DummyClassifier

        return DummyClassifier(strategy="most_frequent")
    raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")


def train(
    model_type: str = "logistic_regression",
    c: float = 1.0,
    test_size: float = 0.3,
    random_state: int = 42,
    experiment_name: str = TRAINING_EXPERIMENT,
    tags: dict[str, str] | None = None,
) -> dict[str, str]:
    """Fit on the training split and log the run and the model (signature, input example)."""
    require_tracking_uri()
    import mlflow
    import sklearn
    import skops
    from mlflow.models import infer_signature
    from sklearn.metrics import accuracy_score

    model = build_model(model_type, c, random_state)
    x_train, _, y_train, _ = split(test_size, random_state)
    model.fit(x_train, y_train)
    experiment = mlflow.set_experiment(experiment_name)
    with mlflow.start_run(run_name=f"iris-{model_type}", tags=dict(tags or {})) as run:
        params = {"model_type": model_type, "test_size": float(test_size), "random_state": int(random_state)}
        if model_type == "logistic_regression":
            params |= {"C": float(c), "max_iter": 500}
        mlflow.log_params(params)
        mlflow.log_metrics(
            {
                "train_rows": len(x_train),
                "train_accuracy": float(accuracy_score(y_train, model.predict(x_train))),
            }
        )
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(x_train, model.predict(x_train)),
            input_example=x_train.head(5),
            # explicit requirements: MLflow's inference of them is slow and
            # would list the whole pipelines virtualenv
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"skops=={skops.__version__}"],
        )
    return {
        "run_id": run.info.run_id,
        "experiment_id": experiment.experiment_id,
        "model_uri": info.model_uri,
        "model_id": info.model_id,
        "model_type": model_type,
    }


def evaluate(run_id: str, model_uri: str, test_size: float = 0.3, random_state: int = 42) -> dict[str, float]:
    """Score the logged model (loaded back from MLflow) on the holdout split; log the metrics on the run."""
    require_tracking_uri()
    import mlflow
    from sklearn.metrics import accuracy_score, f1_score

    _, x_test, _, y_test = split(test_size, random_state)
    predicted = mlflow.pyfunc.load_model(model_uri).predict(x_test)
    metrics = {
        DECISION_METRIC: float(accuracy_score(y_test, predicted)),
        "holdout_f1_macro": float(f1_score(y_test, predicted, average="macro")),
        "holdout_rows": float(len(x_test)),
    }
    mlflow.MlflowClient().log_batch(
        run_id, metrics=[mlflow.entities.Metric(k, v, _now_ms(), 0) for k, v in metrics.items()]
    )
    return metrics


def register(run_id: str, model_uri: str, metrics: dict[str, float], model_name: str = MODEL_NAME) -> dict[str, str]:
    """Register the logged model as a new version of ``model_name``, tagged with its holdout metric."""
    require_tracking_uri()
    import mlflow

    client = mlflow.MlflowClient()
    # a retried task finds the version its first attempt registered instead of adding another
    earlier = [
        v
        for v in client.search_model_versions(f"name = '{model_name}'")
        if (v.tags or {}).get("source_run_id") == run_id
    ]
    version = (
        earlier[0]
        if earlier
        else mlflow.register_model(
            model_uri,
            model_name,
            tags={DECISION_METRIC: repr(float(metrics[DECISION_METRIC])), "source_run_id": run_id},
        )
    )
    client.set_tag(run_id, "registered_model_version", f"{model_name}/{version.version}")
    return {"model_name": model_name, "version": str(version.version)}


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def _champion_score(client: Any, version: Any) -> float | None:
    """The decision metric of a version: its tag (set by register), else its source run's metric."""
    tagged = (version.tags or {}).get(DECISION_METRIC)
    if tagged is not None:
        try:
            return float(tagged)
        except ValueError:
            pass
    if version.run_id:
        value = client.get_run(version.run_id).data.metrics.get(DECISION_METRIC)
        if value is not None:
            return float(value)
    return None


def decide_champion(
    run_id: str, version: str, metrics: dict[str, float], model_name: str = MODEL_NAME
) -> dict[str, Any]:
    """Move the ``champion`` alias to ``version`` only when it beats the current champion.

    Rule: the candidate wins when there is no champion yet, when the champion
    has no recorded ``holdout_accuracy``, or when its ``holdout_accuracy`` is
    strictly greater; a tie keeps the current champion (no churn for an equal
    model). A retried decision whose candidate already is the champion says
    ``promoted`` again without touching the alias. The decision and the compared values are recorded as tags of the
    training run and of the candidate version.
    """
    require_tracking_uri()
    import mlflow

    client = mlflow.MlflowClient()
    candidate = float(metrics[DECISION_METRIC])
    # the aliases of the model (it exists: register created the candidate)
    current_version = client.get_registered_model(model_name).aliases.get(CHAMPION_ALIAS)
    current = client.get_model_version(model_name, current_version) if current_version else None
    champion_value = _champion_score(client, current) if current is not None else None

    if current is None:
        decision, reason = "promoted", "no champion yet"
    elif str(current.version) == str(version):
        # only a retried or cleared task sees this: its first attempt promoted the candidate
        decision, reason = "promoted", "the candidate is already the champion (retried decision)"
    elif champion_value is None or math.isnan(champion_value):
        decision, reason = "promoted", f"the champion has no {DECISION_METRIC}"
    elif candidate > champion_value:
        decision, reason = "promoted", f"{candidate:.4f} > {champion_value:.4f}"
    else:
        decision, reason = "kept", f"{candidate:.4f} <= {champion_value:.4f}"

    if decision == "promoted" and (current is None or str(current.version) != str(version)):
        client.set_registered_model_alias(model_name, CHAMPION_ALIAS, version)
    # current is None only when the decision is "promoted"
    champion_version = str(version) if decision == "promoted" or current is None else str(current.version)
    record = {
        "champion_decision": decision,
        "champion_decision_reason": reason,
        "champion_decision_rule": DECISION_RULE,
        "champion_metric": DECISION_METRIC,
        "champion_candidate_version": str(version),
        "champion_candidate_value": repr(candidate),
        "champion_previous_version": str(current.version) if current is not None else "",
        "champion_previous_value": repr(champion_value) if champion_value is not None else "",
        "champion_version": champion_version,
    }
    for key, value in record.items():
        client.set_tag(run_id, key, value)
    client.set_model_version_tag(model_name, str(version), "champion_decision", decision)
    return {**record, "model_name": model_name}
