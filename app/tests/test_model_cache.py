"""Model cache behaviour of the running API: alias moves and concurrent first loads."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
from mlflow.tracking import MlflowClient

from tests import lab
from tests.conftest import REFRESH_SECONDS, ApiServer, Registered, metric_value, wait_for
from tests.test_api import ROW


def _register_versions(
    mlflow_lab: lab.MlflowLab, name: str, sources: list[lab.LoggedModel]
) -> list[str]:
    """Register each source's logged model as a new version of ``name``; readable by the API."""
    versions = [lab.register_again(dataclasses.replace(s, name=name)).version for s in sources]
    mlflow_lab.grant_read("registered_model", name)
    return versions


def test_alias_move_is_served_within_the_refresh_interval(
    api: httpx.Client,
    api_server: ApiServer,
    mlflow_lab: lab.MlflowLab,
    registered: Registered,
) -> None:
    name = "iris-moving"
    first, second = _register_versions(mlflow_lab, name, [registered.champion] * 2)
    client = MlflowClient()
    client.set_registered_model_alias(name, "champion", first)

    def served_version() -> str:
        response = api.post(
            f"/predict/{name}/champion", json={"data": [ROW]}, headers=api_server.headers()
        )
        assert response.status_code == 200, response.text
        return str(response.json()["model_version"])

    assert served_version() == first
    client.set_registered_model_alias(name, "champion", second)
    delay = wait_for(lambda: served_version() == second, timeout_s=30)
    # one refresh period plus the load of the new version (done before the switch), with slack
    # for a busy machine
    load_seconds = metric_value(
        api.get("/metrics").text, "oci_mlops_model_load_seconds_sum", model=name, version=second
    )
    print(
        f"alias move served after {delay:.2f}s "
        f"(refresh {REFRESH_SECONDS}s, load {load_seconds:.2f}s)"
    )
    assert delay <= REFRESH_SECONDS + load_seconds + 5.0
    # the move never produced an error, and the old version stays loaded for version-number calls
    response = api.post(
        f"/predict/{name}/{first}", json={"data": [ROW]}, headers=api_server.headers()
    )
    assert response.json()["model_version"] == first

    client.delete_registered_model_alias(name, "champion")
    wait_for(
        lambda: (
            api.post(
                f"/predict/{name}/champion", json={"data": [ROW]}, headers=api_server.headers()
            ).status_code
            == 404
        ),
        timeout_s=REFRESH_SECONDS + 10,
    )


def test_alias_moved_to_a_broken_version_keeps_serving_the_previous_one(
    api: httpx.Client,
    api_server: ApiServer,
    mlflow_lab: lab.MlflowLab,
    registered: Registered,
) -> None:
    name = "iris-half-broken"
    good, broken = _register_versions(mlflow_lab, name, [registered.champion, registered.broken])
    client = MlflowClient()
    client.set_registered_model_alias(name, "champion", good)
    url = f"/predict/{name}/champion"
    assert (
        api.post(url, json={"data": [ROW]}, headers=api_server.headers()).json()["model_version"]
        == good
    )

    client.set_registered_model_alias(name, "champion", broken)
    wait_for(
        lambda: f'oci_mlops_model_load_failures_total{{model="{name}"' in api.get("/metrics").text,
        timeout_s=REFRESH_SECONDS + 20,
    )
    response = api.post(url, json={"data": [ROW]}, headers=api_server.headers())
    assert response.status_code == 200
    assert response.json()["model_version"] == good
    assert (
        metric_value(
            api.get("/metrics").text,
            "oci_mlops_alias_refresh_errors_total",
            model=name,
            alias="champion",
        )
        >= 1
    )


def test_concurrent_first_requests_load_the_version_once(
    api_server: ApiServer, mlflow_lab: lab.MlflowLab, registered: Registered
) -> None:
    name = "iris-concurrent"
    (version,) = _register_versions(mlflow_lab, name, [registered.champion])

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=api_server.url, timeout=60.0) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        f"/predict/{name}/{version}",
                        json={"data": [ROW]},
                        headers=api_server.headers(),
                    )
                    for _ in range(8)
                )
            )

    responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * 8
    assert {r.json()["model_version"] for r in responses} == {version}
    metrics = httpx.get(f"{api_server.url}/metrics").text
    assert (
        metric_value(metrics, "oci_mlops_model_load_seconds_count", model=name, version=version)
        == 1
    )
