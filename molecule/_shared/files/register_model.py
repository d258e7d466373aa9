"""Train a small iris model and register it with the alias champion (run as the MLflow admin).

The site scenario's API and dashboard suites (sitekit.register_iris_model); prints the version as JSON.
"""

import json
import sys

import mlflow
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

name = sys.argv[1]
mlflow.set_experiment("molecule-model-api")
X, y = load_iris(return_X_y=True, as_frame=True)
model = LogisticRegression(max_iter=300).fit(X, y)
with mlflow.start_run():
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(X, model.predict(X)),
        input_example=X.head(2),
        registered_model_name=name,
    )
client = mlflow.MlflowClient()
version = client.search_model_versions(f"name='{name}'", order_by=["version_number DESC"])[0].version
client.set_registered_model_alias(name, "champion", version)
print(json.dumps(version))
