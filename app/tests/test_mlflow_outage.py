"""MLflow down or refusing: cached models keep serving and /ready stays 200, saying "degraded".

Runs against the session's API and MLflow server; every test brings MLflow (and the grants it
changes) back before it ends, and waits until the API is plainly "ready" again.
"""

from __future__ import annotations

import dataclasses
import time
import urllib.error
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mlflow.tracking import MlflowClient

from tests import lab
from tests.conftest import (
    MODEL,
    REFRESH_SECONDS,
    ApiServer,
    Registered,
    metric_sum,
    wait_for,
)
from tests.test_api import ROW

PREDICTIONS = 100


def _ready(api: httpx.Client) -> tuple[int, dict[str, Any]]:
    response = api.get("/ready")
    return response.status_code, response.json()


def _wait_plainly_ready(api: httpx.Client, timeout_s: float = 60) -> float:
    return wait_for(lambda: _ready(api)[1]["status"] == "ready", timeout_s, interval_s=0.2)


def _refresh_errors(api: httpx.Client, name: str) -> float:
    return metric_sum(api.get("/metrics").text, "oci_mlops_alias_refresh_errors_total", model=name)


@pytest.fixture
def mlflow_outage(mlflow_lab: lab.MlflowLab) -> Iterator[lab.MlflowServer]:
    """The session's MLflow server, started again (same port, same data) after the test."""
    server = mlflow_lab.server
    try:
        yield server
    finally:
        server.start()


def test_cached_models_serve_and_ready_is_degraded_while_mlflow_is_down(
    api: httpx.Client,
    api_server: ApiServer,
    registered: Registered,
    mlflow_outage: lab.MlflowServer,
) -> None:
    _wait_plainly_ready(api)
    champion = registered.champion.version
    url = f"/predict/{MODEL}/champion"
    assert api.post(url, json={"data": [ROW]}, headers=api_server.headers()).status_code == 200
    errors_before = _refresh_errors(api, MODEL)

    mlflow_outage.stop()
    down_at = time.monotonic()
    status, body = _ready(api)
    assert status == 200, body
    assert body["status"] == "degraded"
    assert body["models"] == {f"{MODEL}@champion": champion}
    assert any(r.startswith("MLflow unreachable: ") for r in body["reasons"]), body

    started = time.perf_counter()
    answers = [
        api.post(url, json={"data": [ROW]}, headers=api_server.headers())
        for _ in range(PREDICTIONS)
    ]
    seconds = time.perf_counter() - started
    assert [r.status_code for r in answers] == [200] * PREDICTIONS, {
        r.status_code: r.text for r in answers
    }
    assert {r.json()["model_version"] for r in answers} == {champion}
    print(f"{PREDICTIONS} predictions with MLflow down: {seconds:.2f}s")

    # The alias refresh fails now (counted, reported in /ready), and the alias stays cached.
    wait_for(lambda: _refresh_errors(api, MODEL) > errors_before, 60, interval_s=0.2)
    status, body = _ready(api)
    assert status == 200, body
    assert body["status"] == "degraded"
    assert any(
        r.startswith(f"aliases of model {MODEL} not refreshed, serving the cached versions")
        for r in body["reasons"]
    ), body
    response = api.post(url, json={"data": [ROW]}, headers=api_server.headers())
    assert response.status_code == 200
    assert response.json()["model_version"] == champion

    # A model not cached needs MLflow: 503 (not 404, which would claim it does not exist).
    def unknown_model() -> httpx.Response:
        return api.post(
            "/predict/iris-never-registered/champion",
            json={"data": [ROW]},
            headers=api_server.headers(),
        )

    assert unknown_model().status_code == 503, unknown_model().text
    print(f"MLflow down for {time.monotonic() - down_at:.1f}s")

    mlflow_outage.start()
    recovered = _wait_plainly_ready(api)
    print(f"/ready plainly ready {recovered:.2f}s after MLflow answered again")
    assert _ready(api) == (200, {"status": "ready", "models": {f"{MODEL}@champion": champion}})
    # MLflow answers again: the model it does not have is a 404, the cached one still serves
    assert unknown_model().status_code == 404, unknown_model().text
    response = api.post(url, json={"data": [ROW]}, headers=api_server.headers())
    assert response.status_code == 200, response.text


def _revoke(mlflow_lab: lab.MlflowLab, name: str) -> None:
    mlflow_lab.server.call(
        "POST",
        "/api/3.0/mlflow/users/permissions/revoke",
        {"username": lab.READER_USER, "resource_type": "registered_model", "resource_id": name},
    )


def test_a_403_during_the_alias_refresh_keeps_the_cached_alias(
    api: httpx.Client, api_server: ApiServer, mlflow_lab: lab.MlflowLab, registered: Registered
) -> None:
    name = "iris-revoked"
    version = lab.register_again(dataclasses.replace(registered.champion, name=name)).version
    mlflow_lab.grant_read("registered_model", name)
    client = MlflowClient()
    client.set_registered_model_alias(name, "champion", version)
    url = f"/predict/{name}/champion"
    response = api.post(url, json={"data": [ROW]}, headers=api_server.headers())
    assert response.status_code == 200, response.text
    errors_before = _refresh_errors(api, name)

    _revoke(mlflow_lab, name)
    try:
        # the reader now gets 403 PERMISSION_DENIED for the model, as for an unknown one
        with pytest.raises(urllib.error.HTTPError) as denied:
            mlflow_lab.server.call(
                "GET",
                "/api/2.0/mlflow/registered-models/get",
                {"name": name},
                auth=(lab.READER_USER, mlflow_lab.reader_password),
            )
        assert denied.value.code == 403

        def predict() -> httpx.Response:
            return api.post(url, json={"data": [ROW]}, headers=api_server.headers())

        # two refreshes met the 403 (or, as before this fix, the alias was dropped: 404)
        wait_for(
            lambda: _refresh_errors(api, name) >= errors_before + 2 or predict().status_code != 200,
            30,
            interval_s=0.2,
        )
        response = predict()
        assert response.status_code == 200, response.text
        assert response.json()["model_version"] == version
        status, body = _ready(api)
        assert status == 200
        assert body["status"] == "degraded"
        assert body["reasons"] == [
            f"aliases of model {name} not refreshed, serving the cached versions: registered "
            f"model {name!r} not found (MLflow: PERMISSION_DENIED)"
        ]
        # an unknown model is still a 404 on its first load
        unknown = api.post(
            "/predict/no-such-model/champion", json={"data": [ROW]}, headers=api_server.headers()
        )
        assert unknown.status_code == 404, unknown.text
    finally:
        mlflow_lab.grant_read("registered_model", name)
    _wait_plainly_ready(api, timeout_s=REFRESH_SECONDS + 30)
    # a definite answer still drops the alias: deleted alias -> 404 at the next refresh
    client.delete_registered_model_alias(name, "champion")
    wait_for(
        lambda: (
            api.post(url, json={"data": [ROW]}, headers=api_server.headers()).status_code == 404
        ),
        REFRESH_SECONDS + 10,
    )
