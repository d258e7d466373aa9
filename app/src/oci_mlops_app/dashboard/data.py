"""Data access for the dashboard: MLflow (registry, runs, model signatures) and the serving API.

Kept free of Streamlit so that it can be used and tested on its own.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import mlflow.artifacts
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.models.model import MLMODEL_FILE_NAME
from mlflow.tracking import MlflowClient
from mlflow.types import DataType

from ..registry import ModelInfo, Registry, first_line

BATCH_ROWS = 1000
PREDICTION_COLUMN = "prediction"
MAX_RUNS = 500


@dataclass(frozen=True)
class InputColumn:
    """One input column of a model signature."""

    name: str
    type: str
    required: bool


class ApiError(Exception):
    """The serving API refused a request or could not be reached."""

    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}" if status else detail)
        self.status = status
        self.detail = detail


class ApiClient:
    """Calls the serving API with the dashboard's API key."""

    def __init__(self, base_url: str, api_key: str, timeout_seconds: float = 60.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = {"X-API-Key": api_key}
        self._timeout = timeout_seconds

    def predict(self, name: str, ref: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = f"{self._base_url}/predict/{quote(name, safe='')}/{quote(ref, safe='')}"
        try:
            response = httpx.post(url, json=payload, headers=self._headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise ApiError(None, f"serving API unreachable at {self._base_url}: {exc}") from exc
        if response.status_code != 200:
            raise ApiError(response.status_code, _error_detail(response))
        result: dict[str, Any] = response.json()
        return result


def _error_detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        return response.text[:500]
    if isinstance(detail, list):  # FastAPI request-validation errors
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg')}" for item in detail
        )
    return str(detail)


def list_models(tracking_uri: str) -> list[ModelInfo]:
    return Registry(tracking_uri).list_models()


def versions_table(tracking_uri: str, models: Sequence[ModelInfo]) -> pd.DataFrame:
    """One row per model version with its aliases and the metrics of the run that produced it."""
    client = MlflowClient(tracking_uri=tracking_uri)
    metrics_by_run: dict[str, dict[str, float]] = {}
    rows = []
    for model in models:
        for version in model.versions:
            row: dict[str, Any] = {
                "model": model.name,
                "version": int(version.version),
                "aliases": ", ".join(version.aliases),
                "status": version.status,
                "created": pd.to_datetime(version.creation_timestamp, unit="ms", utc=True),
                "run_id": version.run_id or "",
            }
            if version.run_id:
                if version.run_id not in metrics_by_run:
                    metrics_by_run[version.run_id] = _run_metrics(client, version.run_id)
                row.update(
                    {f"metric: {k}": v for k, v in sorted(metrics_by_run[version.run_id].items())}
                )
            rows.append(row)
    return pd.DataFrame(rows)


def _run_metrics(client: MlflowClient, run_id: str) -> dict[str, float]:
    try:
        return dict(client.get_run(run_id).data.metrics)
    except MlflowException:  # deleted run, or a run the read-only user may not read
        return {}


def input_columns(tracking_uri: str, name: str, version: str) -> list[InputColumn] | None:
    """The named input columns of a model version's signature, or None if it has none."""
    with tempfile.TemporaryDirectory(prefix="oci-mlops-mlmodel-") as destination:
        mlmodel = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}/{MLMODEL_FILE_NAME}",
            dst_path=destination,
            tracking_uri=tracking_uri,
            registry_uri=tracking_uri,
        )
        signature = Model.load(mlmodel).signature
    schema = signature.inputs if signature is not None else None
    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return None
    return [
        InputColumn(
            name=str(c.name),
            type=c.type.name if isinstance(c.type, DataType) else str(c.type),
            required=bool(c.required),
        )
        for c in schema.inputs
    ]


def score_frame(
    api: ApiClient, name: str, ref: str, frame: pd.DataFrame, batch_rows: int = BATCH_ROWS
) -> pd.DataFrame:
    """Score every row of ``frame`` through the API in batches; append the predictions."""
    if frame.empty:
        raise ApiError(None, "the CSV has no rows")
    predictions: list[Any] = []
    versions: set[str] = set()
    for start in range(0, len(frame), batch_rows):
        chunk = frame.iloc[start : start + batch_rows]
        rows = [[_json_value(v) for v in row] for row in chunk.itertuples(index=False)]
        answer = api.predict(name, ref, {"columns": [str(c) for c in chunk.columns], "data": rows})
        predictions.extend(answer["predictions"])
        versions.add(str(answer["model_version"]))
    scored = frame.copy()
    if predictions and isinstance(predictions[0], dict):
        expanded = pd.DataFrame(predictions, index=frame.index).add_prefix(f"{PREDICTION_COLUMN}.")
        scored = pd.concat([scored, expanded], axis=1)
    else:
        scored[PREDICTION_COLUMN] = predictions
    scored["model_version"] = ",".join(sorted(versions))
    return scored


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value.item() if hasattr(value, "item") else value


def experiments(tracking_uri: str) -> list[tuple[str, str]]:
    """``(experiment_id, name)`` of the experiments the user can read, by name."""
    client = MlflowClient(tracking_uri=tracking_uri)
    return sorted(
        ((e.experiment_id, e.name) for e in client.search_experiments()), key=lambda e: e[1]
    )


def runs_table(tracking_uri: str, experiment_id: str) -> pd.DataFrame:
    """The most recent runs of an experiment: identity, status, start, metrics and params."""
    client = MlflowClient(tracking_uri=tracking_uri)
    rows = []
    for run in client.search_runs(
        [experiment_id], max_results=MAX_RUNS, order_by=["start_time DESC"]
    ):
        row: dict[str, Any] = {
            "run": f"{run.info.run_name or 'run'} ({run.info.run_id[:8]})",
            "run_id": run.info.run_id,
            "status": run.info.status,
            "start_time": pd.to_datetime(run.info.start_time, unit="ms", utc=True),
        }
        row.update({f"metrics.{k}": v for k, v in sorted(run.data.metrics.items())})
        row.update({f"params.{k}": v for k, v in sorted(run.data.params.items())})
        rows.append(row)
    return pd.DataFrame(rows)


def describe_error(exc: Exception) -> str:
    """A one-line, user-facing description of a dashboard data error."""
    if isinstance(exc, MlflowException):
        return first_line(exc.message)
    return first_line(str(exc)) if str(exc) else type(exc).__name__
