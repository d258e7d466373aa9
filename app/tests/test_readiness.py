"""Readiness failures and the last-resort error handler, with the app run in-process."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from oci_mlops_app.api import ObservabilityMiddleware, create_app
from oci_mlops_app.config import ApiSettings
from oci_mlops_app.logs import JsonFormatter
from tests import lab
from tests.conftest import MODEL, wait_for

KEY = "k" * 32


def _settings(
    tracking_uri: str, username: str, password: str, preload: str, served: str = MODEL
) -> ApiSettings:
    return ApiSettings.from_env(
        {
            "MLFLOW_TRACKING_URI": tracking_uri,
            "MLFLOW_TRACKING_USERNAME": username,
            "MLFLOW_TRACKING_PASSWORD": password,
            "OCI_MLOPS_API_KEYS": KEY,
            "OCI_MLOPS_SERVED_MODELS": served,
            "OCI_MLOPS_PRELOAD_MODELS": preload,
            "OCI_MLOPS_ALIAS_REFRESH_SECONDS": "1",
            "OCI_MLOPS_MLFLOW_TIMEOUT_SECONDS": "2",
        }
    )


def _not_ready_reasons(client: TestClient) -> list[str]:
    response = client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    return list(body["reasons"])


def test_not_ready_when_mlflow_is_unreachable() -> None:
    dead = f"http://127.0.0.1:{lab.free_port()}"
    app = create_app(_settings(dead, "reader", "irrelevant-pass", f"{MODEL}@champion"))
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        wait_for(lambda: "not loaded yet" not in json.dumps(client.get("/ready").json()), 20)
        reasons = _not_ready_reasons(client)
        assert any(r.startswith("MLflow unreachable: ConnectError") for r in reasons), reasons
        assert any(
            r.startswith(f"model {MODEL}@champion: MLflow registry request failed") for r in reasons
        )
        response = client.post(
            f"/predict/{MODEL}/champion", json={"data": [[1, 2, 3, 4]]}, headers={"X-API-Key": KEY}
        )
        assert response.status_code == 503
        assert client.get("/models", headers={"X-API-Key": KEY}).status_code == 503


def test_not_ready_while_a_preload_model_is_missing(
    mlflow_lab: lab.MlflowLab, registered: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = mlflow_lab.env(reader=True)
    for key, value in reader.items():
        monkeypatch.setenv(key, value)
    preload = f"{MODEL}@champion,no-such-model@champion"
    app = create_app(
        _settings(
            mlflow_lab.uri,
            reader["MLFLOW_TRACKING_USERNAME"],
            reader["MLFLOW_TRACKING_PASSWORD"],
            preload,
            served=f"{MODEL},no-such-model",
        )
    )
    with TestClient(app) as client:
        wait_for(lambda: "not loaded yet" not in json.dumps(client.get("/ready").json()), 60)
        reasons = _not_ready_reasons(client)
        assert reasons == [
            "model no-such-model@champion: registered model 'no-such-model' has no alias "
            "'champion' (MLflow: PERMISSION_DENIED)"
        ]


def test_not_ready_with_wrong_mlflow_credentials(mlflow_lab: lab.MlflowLab) -> None:
    app = create_app(_settings(mlflow_lab.uri, lab.READER_USER, "wrong-password", ""))
    with TestClient(app) as client:
        assert _not_ready_reasons(client) == ["MLflow answered HTTP 401 to a registry search"]


@pytest.fixture
def failing_app() -> Iterator[TestClient]:
    """A FastAPI app with the API's middleware whose only route raises an unexpected error."""
    app = FastAPI()
    app.add_middleware(ObservabilityMiddleware)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app) as client:
        yield client


def test_unexpected_errors_become_json_500_with_request_id(
    failing_app: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="oci_mlops_app.api"):
        response = failing_app.get("/boom", headers={"X-Request-ID": "abc-123"})
    assert response.status_code == 500
    assert response.json() == {
        "detail": "internal server error; see the server log",
        "request_id": "abc-123",
    }
    assert response.headers["X-Request-ID"] == "abc-123"
    assert "secret internals" not in response.text
    record = next(r for r in caplog.records if r.getMessage() == "unhandled error")
    entry = json.loads(JsonFormatter().format(record))
    assert "RuntimeError: secret internals" in entry["exception"]


def test_untrusted_request_ids_are_replaced(failing_app: TestClient) -> None:
    response = failing_app.get("/boom", headers={"X-Request-ID": "bad id\twith spaces"})
    assert response.headers["X-Request-ID"] != "bad id\twith spaces"
    assert len(response.headers["X-Request-ID"]) == 32
