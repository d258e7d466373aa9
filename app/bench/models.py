"""The benchmark's second model: iris plus a string (categorical) column.

``region`` is a made-up column (``north``, ``south``, ``east``) derived from the row number and
the species, so the model has something to learn from it; a scikit-learn Pipeline one-hot encodes
it (ColumnTransformer, the numeric columns passed through) in front of a LogisticRegression. The
signature is inferred from a pandas DataFrame whose ``region`` column has dtype object, so its
input schema has four ``double`` columns and one ``string`` column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests import lab

if TYPE_CHECKING:
    import pandas as pd

REGIONS = ("north", "south", "east")
CATEGORICAL_COLUMN = "region"


def iris_with_region() -> tuple[pd.DataFrame, pd.Series]:
    """Iris's four features plus ``region`` (dtype object), and the species."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_iris

    features, target = load_iris(return_X_y=True, as_frame=True)
    codes = (np.arange(len(features)) * 7 + target.to_numpy()) % len(REGIONS)
    features = features.assign(
        **{CATEGORICAL_COLUMN: pd.Series(np.asarray(REGIONS, dtype=object)[codes], dtype=object)}
    )
    return features, target


def log_categorical_model(experiment_name: str, model_name: str) -> lab.LoggedModel:
    """Train the Pipeline on :func:`iris_with_region` and register it as ``model_name``.

    Uses the MLflow client settings of the current environment (the admin's credentials).
    """
    import mlflow
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    features, target = iris_with_region()
    model = Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [("onehot", OneHotEncoder(handle_unknown="ignore"), [CATEGORICAL_COLUMN])],
                    remainder="passthrough",
                ),
            ),
            ("classify", LogisticRegression(max_iter=500)),
        ]
    ).fit(features, target)
    mlflow.set_experiment(experiment_name)
    with mlflow.start_run(run_name="logreg-onehot-region") as run:
        info = lab.log_sklearn_model(model, features, model_name)
    return lab.logged(info, run, model_name)
