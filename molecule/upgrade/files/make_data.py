"""Create MLflow data with the previous release's client; print it as JSON (last line).

Runs on the mlflow host with the server's virtualenv (prepare.yml): an
experiment with two runs (params, metric histories, a tag, an artifact), a
registered model with a version from each run and the alias `champion` on the
second. The tests read the same objects back after the upgrade.
"""

import json
import tempfile
from pathlib import Path

import mlflow
from mlflow import MlflowClient

EXPERIMENT = "upgrade-check"
MODEL = "upgrade-model"

client = MlflowClient()
experiment_id = client.create_experiment(EXPERIMENT, tags={"created_by": "molecule-upgrade"})
runs = {}
with tempfile.TemporaryDirectory() as tmp:
    model_dir = Path(tmp) / "model"
    model_dir.mkdir()
    for index in (1, 2):
        run = client.create_run(experiment_id, run_name=f"before-upgrade-{index}", tags={"phase": "previous"})
        run_id = run.info.run_id
        client.log_param(run_id, "alpha", str(index / 10))
        for step in range(5):
            client.log_metric(run_id, "rmse", 1.0 / (index + step), step=step)
        (model_dir / "MLmodel").write_text(f"artifact_path: model\nrun_id: {run_id}\n")
        client.log_artifacts(run_id, str(model_dir), artifact_path="model")
        client.set_terminated(run_id)
        runs[run_id] = {
            "name": f"before-upgrade-{index}",
            "params": {"alpha": str(index / 10)},
            "rmse": [1.0 / (index + step) for step in range(5)],
            "artifact_uri": client.get_run(run_id).info.artifact_uri,
        }

client.create_registered_model(MODEL, description="created before the upgrade")
versions = {}
for run_id, run in runs.items():
    version = client.create_model_version(MODEL, source=f"{run['artifact_uri']}/model", run_id=run_id)
    versions[version.version] = run_id
champion = max(versions, key=int)
client.set_registered_model_alias(MODEL, "champion", champion)

print(
    json.dumps(
        {
            "mlflow_version": mlflow.__version__,
            "experiment": EXPERIMENT,
            "experiment_id": experiment_id,
            "runs": runs,
            "model": MODEL,
            "versions": versions,
            "champion": champion,
        }
    )
)
