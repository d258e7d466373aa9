"""Only the operator's served models (OCI_MLOPS_SERVED_MODELS) are ever looked up or loaded.

Any MLflow user can register a model, and a pyfunc model's loader runs in the process that loads
it. A model registered under another name, even one the API's MLflow user may read, is a 404
with nothing downloaded and nothing of its code run: through the API and the dashboard's path.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from oci_mlops_app import downloads
from oci_mlops_app.dashboard import data
from tests import lab
from tests.conftest import MODEL, UNSERVED_MODEL, Registered, Unserved

ROW = [5.1, 3.5, 1.4, 0.2]
API_USER = "api-reads-everything"


@dataclass(frozen=True)
class Api:
    url: str
    key: str
    tmpdir: Path  # the API process's TMPDIR: where it downloads models
    mlflow_user: tuple[str, str]

    def downloads(self) -> list[Path]:
        """Every file below the API's TMPDIR (its model download dirs), owner locks aside."""
        return sorted(p for p in self.tmpdir.rglob("*") if p.is_file() and p.name != downloads.LOCK)


@pytest.fixture(scope="module")
def api(
    mlflow_lab: lab.MlflowLab,
    registered: Registered,
    unserved: Unserved,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Api]:
    """``oci-mlops-api`` serving only MODEL, nothing preloaded, with a TMPDIR of its own.

    Its MLflow user reads every experiment and registered model, as the platform's mlflow-reader
    does: MLflow would hand it the unserved model, so only the served list can keep it out.
    """
    user = (API_USER, mlflow_lab.server.create_user(API_USER))
    for resource_type in ("experiment", "registered_model"):
        mlflow_lab.server.grant(API_USER, resource_type, "*", "READ")
    key = secrets.token_urlsafe(24)
    port = lab.free_port()
    workdir = tmp_path_factory.mktemp("served-api")
    tmpdir = workdir / "tmp"
    tmpdir.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OCI_MLOPS_"))},
        "MLFLOW_TRACKING_URI": mlflow_lab.uri,
        "MLFLOW_TRACKING_USERNAME": user[0],
        "MLFLOW_TRACKING_PASSWORD": user[1],
        "TMPDIR": str(tmpdir),
        "OCI_MLOPS_API_KEYS": f"tests={key}",
        "OCI_MLOPS_SERVED_MODELS": MODEL,
        "OCI_MLOPS_API_PORT": str(port),
    }
    log_path = workdir / "api.log"
    process = lab.start_logged_process([lab.venv_bin("oci-mlops-api")], env, log_path)
    try:
        url = f"http://127.0.0.1:{port}"
        lab.wait_http_ok(f"{url}/ready", 60, process, log_path)
        yield Api(url, key, tmpdir, user)
    finally:
        lab.stop_process(process)


def test_an_unserved_model_is_404_and_never_downloaded_nor_loaded(
    api: Api, mlflow_lab: lab.MlflowLab, unserved: Unserved
) -> None:
    # The API's MLflow user can read the model and its artifacts: only the served list stands
    # in the way.
    mlmodel = httpx.get(
        f"{mlflow_lab.uri}/api/2.0/mlflow-artifacts/artifacts/"
        f"{unserved.model.experiment_id}/models/{unserved.model.model_id}/artifacts/MLmodel",
        auth=api.mlflow_user,
        timeout=30,
    )
    assert mlmodel.status_code == 200, mlmodel.text
    headers = {"X-API-Key": api.key}
    with httpx.Client(base_url=api.url, headers=headers, timeout=60) as client:
        for ref in ("champion", unserved.model.version, "Production"):
            response = client.post(f"/predict/{UNSERVED_MODEL}/{ref}", json={"data": [ROW]})
            assert response.status_code == 404, response.text
            assert UNSERVED_MODEL in response.json()["detail"]
        assert client.get(f"/models/{UNSERVED_MODEL}").status_code == 404
        listed = client.get("/models")
        assert listed.status_code == 200
        assert [m["name"] for m in listed.json()["models"]] == [MODEL]
    # the dashboard's path: its API client (the prediction form and the batch scoring)
    dashboard_api = data.ApiClient(api.url, api.key)
    assert dashboard_api.served_models() == frozenset({MODEL})
    with pytest.raises(data.ApiError) as refused:
        dashboard_api.predict(UNSERVED_MODEL, "champion", {"data": [ROW]})
    assert refused.value.status == 404
    assert not unserved.marker.exists(), "the unserved model's loader ran"
    assert api.downloads() == [], "the API downloaded files of a model it does not serve"

    # the served model still is, downloaded into the same directory the checks above looked at
    with httpx.Client(base_url=api.url, headers=headers, timeout=60) as client:
        response = client.post(f"/predict/{MODEL}/champion", json={"data": [ROW]})
    assert response.status_code == 200, response.text
    assert any(p.name == "MLmodel" for p in api.downloads())
    assert not unserved.marker.exists()
