"""The dashboard role's suite on the api host: the dashboard runs under systemd, serves its page
under the edge's route, asks for an MLflow sign-in, and then shows the real registry (as the
signed-in user) and predicts through the API (with its own key).

It ran in the serving scenario until that joined this one (test_1j_model_api.py).
"""

import json
from pathlib import Path

import pytest
import sitekit
from rolekit import assert_runs_as, client_rules, copy_to, env_file, port_rules, unit_caps
from sitekit import API, EDGE, secret

MODEL = "molecule-dashboard-iris"
VENV = "/opt/oci-mlops-app/venv"
RENDER = Path(__file__).resolve().parents[1] / "files" / "render_dashboard.py"
testinfra_hosts = [API]
API_ADDRESS = sitekit.ip(API)


@pytest.fixture(scope="module")
def model_version():
    return sitekit.register_iris_model(MODEL)


def test_unit_active_enabled_non_root(host):
    assert_runs_as(host, "oci-mlops-dashboard", "dashboard")


def test_environment_file_is_0640_with_sign_in_and_the_dashboards_own_key(host):
    content = env_file(host, "/etc/oci-mlops-dashboard/dashboard.env", "dashboard")
    assert "OCI_MLOPS_DASHBOARD_AUTH=mlflow" in content
    # with sign-in, MLflow is read as the signed-in user: no shared MLflow user in the file
    assert "MLFLOW_TRACKING_USERNAME" not in content
    assert "MLFLOW_TRACKING_PASSWORD" not in content
    assert secret("mlflow_readonly_password") not in content
    assert secret("mlflow_admin_password") not in content
    # the API's key named dashboard, not the users' key (clients)
    assert f"OCI_MLOPS_API_KEY={secret('dashboard_api_key')}" in content
    assert secret("api_key") not in content


def _base_path(host) -> str:
    """The dashboard's base path (OCI_MLOPS_DASHBOARD_BASE_PATH: the edge's route)."""
    line = host.check_output("grep '^OCI_MLOPS_DASHBOARD_BASE_PATH=' /etc/oci-mlops-dashboard/dashboard.env")
    return line.partition("=")[2].strip().rstrip("/")


def test_page_answers_200_headless(host):
    address = API_ADDRESS
    base = _base_path(host)
    # Behind the edge the dashboard serves under its route (the topology's /dashboard/).
    assert base == "/dashboard"
    url = f"http://{address}:8501{base}"
    status, _, body = host.check_output(f"curl -sS -w '\\n%{{http_code}}' {url}/").rpartition("\n")[::-1]
    assert status == "200"
    assert "<title>Streamlit</title>" in body or "streamlit" in body.lower()
    assert host.check_output(f"curl -sS {url}/_stcore/health") == "ok"


def test_listens_on_private_address_only(host):
    sockets = [str(s) for s in host.socket.get_listening_sockets() if s.endswith(":8501")]
    assert sockets == [f"tcp://{API_ADDRESS}:8501"], sockets


def _render(host, user=None):
    """The installed dashboard, as its user with its env file (AppTest), signed in as `user` (name, password)."""
    script = copy_to(host, RENDER)
    sign_in = f"export DASHBOARD_TEST_USERNAME='{user[0]}' DASHBOARD_TEST_PASSWORD='{user[1]}' && " if user else ""
    result = host.run(
        "set -a && . /etc/oci-mlops-dashboard/dashboard.env && set +a && "
        f"{sign_in}cd /tmp && runuser -u dashboard -- env HOME=/tmp {VENV}/bin/python {script} {MODEL}"
    )
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_without_sign_in_only_the_sign_in_form_is_shown(host, model_version):
    shown = _render(host)
    assert shown["exception"] == [], shown
    assert shown["anonymous"] == {"inputs": ["Username", "Password"], "tabs": [], "tables": 0}, shown


def test_a_wrong_password_is_refused(host, model_version):
    shown = _render(host, ("data-scientist", "not-the-password"))
    assert shown["exception"] == [], shown
    assert shown["errors"] == ["Sign-in failed: unknown user or wrong password."], shown
    assert shown["tabs"] == [], shown


def test_signed_in_user_sees_the_registry_and_predicts_through_the_api(host, model_version):
    """Signed in as the users' MLflow account (client.env's data-scientist: the default READ)."""
    shown = _render(host, ("data-scientist", secret("mlflow_data_scientist_password")))
    assert shown["exception"] == [], shown
    assert shown["errors"] == [], shown
    assert shown["tabs"] == ["Registered models", "Predict", "Experiments"]
    assert MODEL in shown["models"]
    assert f"champion → v{model_version}" in shown["aliases"][MODEL]
    assert shown["prediction"] == [f"Prediction: 0 ({MODEL} version {model_version})"], shown


def test_firewall_opens_the_dashboard_port_to_the_edge_only(host):
    # dashboard_client_cidrs' default behind the edge: the topology's clients, the edge's /32.
    assert port_rules(host, 8501) == client_rules(8501, sitekit.ip(EDGE))
    assert "8501/tcp" not in host.check_output("firewall-cmd --list-ports").split()


def test_unit_is_hardened(host):
    score = host.check_output("systemd-analyze security oci-mlops-dashboard.service --no-pager | tail -1")
    assert "OK" in score or "SAFE" in score, score
    assert unit_caps(host, "oci-mlops-dashboard") == (str(1024**3), "256")
    # Streamlit's upload cap (dashboard_max_upload_mb), not its default 200 MB
    assert "OCI_MLOPS_DASHBOARD_MAX_UPLOAD_MB=8" in host.file("/etc/oci-mlops-dashboard/dashboard.env").content_string
