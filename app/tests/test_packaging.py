"""The wheel and the console entry points."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx

from tests import lab
from tests.conftest import log_entries, metric_value

APP_DIR = Path(__file__).resolve().parents[1]


def test_wheel_contains_code_dashboard_and_static_page(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path),
            str(APP_DIR),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    version = importlib.metadata.version("oci-mlops-app")  # pyproject.toml's, installed by make
    (wheel,) = tmp_path.glob(f"oci_mlops_app-{version}-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(f"oci_mlops_app-{version}.dist-info/entry_points.txt").decode()
        metadata = archive.read(f"oci_mlops_app-{version}.dist-info/METADATA").decode()
    for path in (
        "oci_mlops_app/api.py",
        "oci_mlops_app/static/index.html",
        "oci_mlops_app/dashboard/streamlit_app.py",
        "oci_mlops_app/dashboard/data.py",
        "oci_mlops_app/py.typed",
    ):
        assert path in names
    assert not any(name.startswith("tests/") for name in names)
    assert "oci-mlops-api = oci_mlops_app.cli:api_main" in entry_points
    assert "oci-mlops-dashboard = oci_mlops_app.cli:dashboard_main" in entry_points
    assert "Requires-Python: >=3.10" in metadata
    requirements = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert requirements
    assert all("==" in line for line in requirements)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OCI_MLOPS_"))}
    return {**env, **extra}


def test_api_refuses_to_start_without_api_keys() -> None:
    result = subprocess.run(
        [lab.venv_bin("oci-mlops-api")],
        env=_clean_env(MLFLOW_TRACKING_URI="http://127.0.0.1:5000"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "configuration error: OCI_MLOPS_API_KEYS must list at least one API key" in result.stderr


def test_dashboard_entry_point_serves_headless(tmp_path: Path) -> None:
    port = lab.free_port()
    env = _clean_env(
        MLFLOW_TRACKING_URI="http://127.0.0.1:5000",
        OCI_MLOPS_API_URL="http://127.0.0.1:8000",
        OCI_MLOPS_API_KEY="k" * 32,
        OCI_MLOPS_DASHBOARD_PORT=str(port),
    )
    process = lab.start_logged_process(
        [lab.venv_bin("oci-mlops-dashboard")], env, tmp_path / "dashboard.log"
    )
    try:
        lab.wait_http_ok(f"http://127.0.0.1:{port}/_stcore/health", 60, process)
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
    finally:
        lab.stop_process(process)


def test_dashboard_entry_point_serves_under_a_base_path(tmp_path: Path) -> None:
    port = lab.free_port()
    log_path = tmp_path / "dashboard.log"
    env = _clean_env(
        MLFLOW_TRACKING_URI="http://127.0.0.1:5000",
        OCI_MLOPS_API_URL="http://127.0.0.1:8000",
        OCI_MLOPS_API_KEY="k" * 32,
        OCI_MLOPS_DASHBOARD_PORT=str(port),
        OCI_MLOPS_DASHBOARD_BASE_PATH="/dashboard/",
        OCI_MLOPS_DASHBOARD_AUTH="none",
    )
    process = lab.start_logged_process([lab.venv_bin("oci-mlops-dashboard")], env, log_path)
    try:
        url = f"http://127.0.0.1:{port}"
        lab.wait_http_ok(f"{url}/dashboard/_stcore/health", 60, process)
        assert httpx.get(f"{url}/dashboard/").status_code == 200
        assert httpx.get(f"{url}/_stcore/health").status_code == 404
    finally:
        lab.stop_process(process)
    (warning,) = [e for e in log_entries(log_path) if e.get("logger") == "oci_mlops_app.config"]
    assert warning["level"] == "WARNING"
    assert "NO sign-in" in str(warning["message"])


def test_api_with_two_workers_aggregates_metrics(mlflow_lab: lab.MlflowLab, tmp_path: Path) -> None:
    port = lab.free_port()
    env = _clean_env(
        **mlflow_lab.env(reader=True),
        OCI_MLOPS_API_KEYS="k" * 32,
        OCI_MLOPS_SERVED_MODELS="iris-classifier",
        OCI_MLOPS_API_WORKERS="2",
    )
    process = lab.start_logged_process(
        [lab.venv_bin("oci-mlops-api"), "--port", str(port)], env, tmp_path / "api.log"
    )  # no preload: ready as soon as MLflow answers
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "api.log"
    try:
        lab.wait_http_ok(f"{url}/ready", 90, process)
        # Until both workers answered. /ready came from one of them; the
        # other may still be starting (CI: 200 quick requests all reached the
        # first), so the bound is time, not a request count.
        sent = 0
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=url, headers={"Connection": "close"}) as client:
            while time.monotonic() < deadline and len(_health_pids(log_path)) < 2:
                for _ in range(10):
                    assert client.get("/health").status_code == 200
                sent += 10
                time.sleep(0.2)
            text = client.get("/metrics").text
        assert len(_health_pids(log_path)) == 2
        assert (
            metric_value(text, "oci_mlops_http_requests_total", route="/health", status="200")
            == sent
        )
    finally:
        lab.stop_process(process)


def _health_pids(log_path: Path) -> set[int]:
    entries = [
        json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")
    ]
    return {e["pid"] for e in entries if e.get("route") == "/health"}
