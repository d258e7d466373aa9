"""The steps of the iris_batch_inference DAG: resolve the champion, score a batch, store the predictions."""

from __future__ import annotations

import time
from typing import Any

from iris_pipeline import CHAMPION_ALIAS, INFERENCE_EXPERIMENT, MODEL_NAME, require_tracking_uri

PREDICTIONS_ARTIFACT = "predictions/predictions.csv"


def resolve_champion(model_name: str = MODEL_NAME, alias: str = CHAMPION_ALIAS) -> dict[str, str]:
    """The version the alias points at now, so the scoring step uses exactly that one."""
    require_tracking_uri()
    import mlflow

    version = mlflow.MlflowClient().get_model_version_by_alias(model_name, alias)
    return {
        "model_name": model_name,
        "alias": alias,
        "version": str(version.version),
        "model_uri": f"models:/{model_name}/{version.version}",
    }


def load_batch(limit: int = 0) -> Any:
    """The batch to score: the iris feature table bundled with scikit-learn (no labels), first ``limit`` rows."""
    from sklearn.datasets import load_iris

    features = load_iris(as_frame=True).data
    return features.head(int(limit)) if int(limit) > 0 else features


def score_batch(
    champion: dict[str, str],
    limit: int = 0,
    experiment_name: str = INFERENCE_EXPERIMENT,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Predict the batch with the resolved champion; log the CSV as a run artifact, row counts and timings."""
    require_tracking_uri()
    import mlflow

    started = time.monotonic()
    batch = load_batch(limit)
    model = mlflow.pyfunc.load_model(champion["model_uri"])
    loaded = time.monotonic()
    predictions = model.predict(batch)
    predicted = time.monotonic()
    output = batch.copy()
    output["prediction"] = [int(p) for p in predictions]

    mlflow.set_experiment(experiment_name)
    run_name = f"score-{champion['model_name']}-v{champion['version']}"
    with mlflow.start_run(run_name=run_name, tags=dict(tags or {})) as run:
        mlflow.log_params(
            {
                "model_name": champion["model_name"],
                "model_alias": champion["alias"],
                "model_version": champion["version"],
                "model_uri": champion["model_uri"],
            }
        )
        mlflow.log_text(output.to_csv(index=False), PREDICTIONS_ARTIFACT)
        finished = time.monotonic()
        mlflow.log_metrics(
            {
                "rows_in": float(len(batch)),
                "rows_out": float(len(output)),
                "model_load_seconds": loaded - started,
                "predict_seconds": predicted - loaded,
                "total_seconds": finished - started,
            }
        )
    return {
        "run_id": run.info.run_id,
        "rows": len(output),
        "artifact_uri": f"{run.info.artifact_uri}/{PREDICTIONS_ARTIFACT}",
        "model_version": champion["version"],
    }
