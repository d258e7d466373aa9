"""The dashboard runs under systemd, serves its page, and shows the real registry through the API."""

import ipaddress
import json
import os
from pathlib import Path

import pytest
import testinfra

MODEL = "molecule-dashboard-iris"
SCENARIO = Path(__file__).resolve().parents[1]
SHARED_FILES = SCENARIO.parent / "_shared" / "files"
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
VENV = "/opt/oci-mlops-app/venv"
testinfra_hosts = ["mol-dash-api"]


def _secret(name):
    return (Path(INVENTORY).parent / ".secrets" / name).read_text().split()[0]


def _ipv4(host):
    return next(a for a in host.interface("eth0").addresses if ipaddress.ip_address(a).version == 4)


def _copy(host, source):
    name = source.name
    script = source.read_text()
    host.run("mkdir -p /tmp/molecule && chmod 0755 /tmp/molecule")
    host.run(f"cat > /tmp/molecule/{name} <<'PY'\n{script}\nPY")
    host.run(f"chmod 0644 /tmp/molecule/{name}")
    return f"/tmp/molecule/{name}"


@pytest.fixture(scope="module")
def model_version():
    """Register a model with alias champion as the MLflow admin, on the MLflow host."""
    mlflow_host = testinfra.get_host(f"ansible://mol-dash-mlflow?ansible_inventory={INVENTORY}")
    script = _copy(mlflow_host, SHARED_FILES / "register_model.py")
    env = (
        "MLFLOW_TRACKING_URI=http://127.0.0.1:5000 MLFLOW_TRACKING_USERNAME=admin "
        f"MLFLOW_TRACKING_PASSWORD='{_secret('mlflow_admin_password')}' MLFLOW_DISABLE_TELEMETRY=true"
    )
    result = mlflow_host.run(f"{env} /opt/mlflow/venv/bin/python {script} {MODEL}")
    assert result.rc == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_unit_active_enabled_non_root(host):
    service = host.service("oci-mlops-dashboard")
    assert service.is_running
    assert service.is_enabled
    assert host.check_output("systemctl show -p User --value oci-mlops-dashboard") == "dashboard"
    assert host.check_output("systemctl show -p MainPID --value oci-mlops-dashboard") != "0"
    pid = host.check_output("systemctl show -p MainPID --value oci-mlops-dashboard")
    assert host.check_output(f"ps -o user= -p {pid}") == "dashboard"


def test_environment_file_is_0640_and_holds_read_only_credentials(host):
    env = host.file("/etc/oci-mlops-dashboard/dashboard.env")
    assert env.mode == 0o640
    assert (env.user, env.group) == ("root", "dashboard")
    content = env.content_string
    assert "MLFLOW_TRACKING_USERNAME=mlflow-reader" in content
    assert f"MLFLOW_TRACKING_PASSWORD={_secret('mlflow_readonly_password')}" in content
    assert _secret("mlflow_admin_password") not in content
    assert f"OCI_MLOPS_API_KEY={_secret('api_key')}" in content


def test_page_answers_200_headless(host):
    address = _ipv4(host)
    status, _, body = host.check_output(
        f"curl -sS -w '\\n%{{http_code}}' http://{address}:8501/"
    ).rpartition("\n")[::-1]
    assert status == "200"
    assert "<title>Streamlit</title>" in body or "streamlit" in body.lower()
    assert host.check_output(f"curl -sS http://{address}:8501/_stcore/health") == "ok"


def test_listens_on_private_address_only(host):
    sockets = [str(s) for s in host.socket.get_listening_sockets() if s.endswith(":8501")]
    assert sockets == [f"tcp://{_ipv4(host)}:8501"], sockets


def test_dashboard_shows_registry_and_predicts_through_the_api(host, model_version):
    """The installed dashboard, as its user with its env file: models tab and a prediction."""
    script = _copy(host, SCENARIO / "files" / "render_dashboard.py")
    result = host.run(
        "set -a && . /etc/oci-mlops-dashboard/dashboard.env && set +a && "
        f"cd /tmp && runuser -u dashboard -- env HOME=/tmp {VENV}/bin/python {script} {MODEL}"
    )
    assert result.rc == 0, result.stderr
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown["exception"] == [], shown
    assert shown["errors"] == [], shown
    assert shown["tabs"] == ["Registered models", "Predict", "Experiments"]
    assert MODEL in shown["models"]
    assert f"champion → v{model_version}" in shown["aliases"][MODEL]
    assert shown["prediction"] == [f"Prediction: 0 ({MODEL} version {model_version})"], shown


def test_firewall_opens_the_dashboard_port(host):
    ports = host.check_output("firewall-cmd --list-ports").split()
    assert "8501/tcp" in ports


def test_unit_is_hardened(host):
    score = host.check_output("systemd-analyze security oci-mlops-dashboard.service --no-pager | tail -1")
    assert "OK" in score or "SAFE" in score, score
