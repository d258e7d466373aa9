"""The API behind a reverse proxy: named keys (rotation, revocation, key file), a path prefix
(with and without the proxy stripping it) and trusted forwarded headers. Each test runs the
console script with its own settings against the session's MLflow (no preload: quick to start).
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests import lab
from tests.conftest import MODEL, Registered, log_entries, log_entry

ROW = [5.1, 3.5, 1.4, 0.2]


def _env(mlflow_lab: lab.MlflowLab, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OCI_MLOPS_"))}
    return {**env, **mlflow_lab.env(reader=True), "OCI_MLOPS_SERVED_MODELS": MODEL, **extra}


@contextmanager
def running_api(env: dict[str, str], log_path: Path) -> Iterator[httpx.Client]:
    port = lab.free_port()
    process = lab.start_logged_process(
        [lab.venv_bin("oci-mlops-api"), "--port", str(port)], env, log_path
    )
    try:
        url = f"http://127.0.0.1:{port}"
        lab.wait_http_ok(f"{url}/health", 60, process, log_path)
        with httpx.Client(base_url=url, timeout=60.0) as client:
            yield client
    finally:
        lab.stop_process(process)


def _models_status(client: httpx.Client, key: str, request_id: str, prefix: str = "") -> int:
    headers = {"X-API-Key": key, "X-Request-ID": request_id}
    return client.get(f"{prefix}/models", headers=headers).status_code


def test_key_rotation_two_keys_then_the_old_one_removed(
    mlflow_lab: lab.MlflowLab, registered: Registered, tmp_path: Path
) -> None:
    old, new = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    log_path = tmp_path / "api.log"
    # before: the old key still bare (deprecated form), the new one named
    with running_api(_env(mlflow_lab, OCI_MLOPS_API_KEYS=f"{old},ci-2={new}"), log_path) as api:
        assert _models_status(api, old, "rot-old") == 200
        assert _models_status(api, new, "rot-new") == 200
    entries = log_entries(log_path)
    by_request = {e.get("request_id"): e for e in entries}
    assert by_request["rot-old"]["api_key"] == "key-1"
    assert by_request["rot-new"]["api_key"] == "ci-2"
    (deprecation,) = [e for e in entries if "deprecated" in str(e["message"])]
    assert deprecation["level"] == "WARNING"
    assert "key-1" in str(deprecation["message"])

    # after: the old key removed, the keys now in a file
    keys_file = tmp_path / "api-keys"
    keys_file.write_text(f"# rotated\nci-2={new}  # the CI client\n\n")
    keys_file.chmod(0o600)
    env = _env(mlflow_lab, OCI_MLOPS_API_KEYS_FILE=str(keys_file))
    with running_api(env, log_path) as api:
        assert _models_status(api, old, "rot-old-after") == 401
        assert _models_status(api, new, "rot-new-after") == 200
        prediction = api.post(
            f"/predict/{MODEL}/champion", json={"data": [ROW]}, headers={"X-API-Key": new}
        )
        assert prediction.status_code == 200
        metrics = api.get("/metrics").text
    assert 'api_key="ci-2"' in metrics
    assert old not in metrics
    assert new not in metrics
    by_request = {e.get("request_id"): e for e in log_entries(log_path)}
    assert by_request["rot-old-after"]["api_key"] is None
    assert by_request["rot-new-after"]["api_key"] == "ci-2"
    text = log_path.read_text()
    assert old not in text
    assert new not in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"OCI_MLOPS_API_KEYS": "Bad_Name=" + "s" * 20},
            "OCI_MLOPS_API_KEYS: entry 1: the name before '=' must be",
        ),
        (
            {"OCI_MLOPS_API_KEYS": "ci=" + "s" * 20 + ",ci=" + "t" * 20},
            "OCI_MLOPS_API_KEYS: entry 2: the name 'ci' is used twice",
        ),
        ({"OCI_MLOPS_API_KEYS": "ci=short-secret"}, "OCI_MLOPS_API_KEYS: entry 1 (ci): the key"),
        (
            {"OCI_MLOPS_API_KEYS": "a=" + "s" * 20, "OCI_MLOPS_API_KEYS_FILE": "/nonexistent"},
            "set either OCI_MLOPS_API_KEYS or OCI_MLOPS_API_KEYS_FILE, not both",
        ),
        ({"OCI_MLOPS_API_KEYS_FILE": "/nonexistent/keys"}, "OCI_MLOPS_API_KEYS_FILE: cannot read"),
        (
            {"OCI_MLOPS_API_KEYS": "a=" + "s" * 20, "OCI_MLOPS_FORWARDED_ALLOW_IPS": "proxy"},
            "OCI_MLOPS_FORWARDED_ALLOW_IPS: 'proxy' is neither",
        ),
        (
            {"OCI_MLOPS_API_KEYS": "a=" + "s" * 20, "OCI_MLOPS_SERVED_MODELS": " , "},
            "OCI_MLOPS_SERVED_MODELS must list the registered model names the API serves",
        ),
    ],
)
def test_bad_key_settings_fail_at_start_naming_the_variable(
    extra: dict[str, str], message: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OCI_MLOPS_"))}
    result = subprocess.run(
        [lab.venv_bin("oci-mlops-api")],
        env={
            **env,
            "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
            "OCI_MLOPS_SERVED_MODELS": MODEL,
            **extra,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"configuration error: {message}" in result.stderr
    assert "s" * 16 not in result.stderr


@pytest.fixture(scope="module")
def prefixed_api(
    mlflow_lab: lab.MlflowLab, registered: Registered, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, str, Path]]:
    """The API with OCI_MLOPS_API_ROOT_PATH=/api and forwarded headers trusted from loopback."""
    key = secrets.token_urlsafe(24)
    log_path = tmp_path_factory.mktemp("prefixed") / "api.log"
    env = _env(
        mlflow_lab,
        OCI_MLOPS_API_KEYS=f"edge-test={key}",
        OCI_MLOPS_API_ROOT_PATH="/api/",
        OCI_MLOPS_FORWARDED_ALLOW_IPS="127.0.0.1",
    )
    with running_api(env, log_path) as client:
        yield client, key, log_path


@pytest.mark.parametrize("prefix", ["/api", ""], ids=["proxy-keeps-prefix", "proxy-strips-it"])
def test_api_under_a_path_prefix(prefixed_api: tuple[httpx.Client, str, Path], prefix: str) -> None:
    api, key, _ = prefixed_api
    assert api.get(f"{prefix}/health").json() == {"status": "ok"}
    answer = api.post(
        f"{prefix}/predict/{MODEL}/champion", json={"data": [ROW]}, headers={"X-API-Key": key}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == [0]
    assert _models_status(api, "wrong-key-of-enough-length", "x", prefix) == 401

    page = api.get(f"{prefix}/")
    assert page.status_code == 200
    assert "fetch(`predict/" in page.text  # relative: resolves under /api/ in the browser
    assert 'fetch("/' not in page.text
    assert "fetch(`/" not in page.text

    docs = api.get(f"{prefix}/docs")
    assert docs.status_code == 200
    assert "'/api/openapi.json'" in docs.text
    schema = api.get(f"{prefix}/openapi.json").json()
    assert schema["servers"] == [{"url": "/api"}]
    assert "/predict/{name}/{ref}" in schema["paths"]


def test_prefix_without_slash_redirects_to_the_page_with_the_forwarded_scheme(
    prefixed_api: tuple[httpx.Client, str, Path],
) -> None:
    api, _, log_path = prefixed_api
    answer = api.get(
        "/api",
        headers={
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": "203.0.113.7",
            "Host": "mlops.example.org",
            "X-Request-ID": "forwarded-1",
        },
    )
    assert answer.status_code == 307
    assert answer.headers["location"] == "https://mlops.example.org/api/"
    entry = log_entry(log_path, "forwarded-1")
    assert entry["client"] == "203.0.113.7"
