"""The model_api role's suite on the api host: the serving API runs under systemd and serves a
model from the real registry, asked at its private address from its own host (behind the edge it
admits only its clients' hosts; the end-to-end and outside-in suites ask through the edge).

It ran in a scenario of its own (serving: db, mlflow and api hosts) until it joined this one:
the same roles' converge, three hosts fewer to create and converge. test_1k_dashboard.py checks
the dashboard.
"""

import json

import pytest
import sitekit
from rolekit import assert_runs_as, client_rules, env_file, port_rules, unit_caps
from sitekit import API, EDGE, secret

MODEL = "molecule-iris"
testinfra_hosts = [API]
API_ADDRESS = sitekit.ip(API)


@pytest.fixture(scope="module")
def model_version():
    return sitekit.register_iris_model(MODEL)


def _curl(host, path, *args):
    out = host.check_output(
        f"curl -sS -o /dev/stdout -w '\\n%{{http_code}}' {' '.join(args)} http://{API_ADDRESS}:8000{path}"
    )
    body, _, status = out.rpartition("\n")
    return int(status), body


def _predict(host, ref, body, key=True):
    """POST a prediction with the users' key (clients), no key (False) or the given key (a str)."""
    value = secret("api_key") if key is True else key
    headers = f"-H 'X-API-Key: {value}'" if value else ""
    return _curl(
        host,
        f"/predict/{MODEL}/{ref}",
        "-X POST -H 'Content-Type: application/json'",
        headers,
        f"-d '{json.dumps(body)}'",
    )


def test_unit_active_enabled_non_root(host):
    assert_runs_as(host, "oci-mlops-api", "model-api")


def test_environment_file_is_0640_with_read_only_credentials_and_the_keys_file(host):
    content = env_file(host, "/etc/oci-mlops-api/api.env", "model-api")
    assert "MLFLOW_TRACKING_USERNAME=mlflow-reader" in content
    assert secret("mlflow_admin_password") not in content
    assert "OCI_MLOPS_API_KEYS_FILE=/etc/oci-mlops-api/api-keys" in content
    assert "OCI_MLOPS_API_KEYS=" not in content
    assert secret("api_key") not in content


def test_keys_file_is_0640_root_model_api_with_the_named_keys(host):
    # env_file checks 0640 root:model-api
    content = env_file(host, "/etc/oci-mlops-api/api-keys", "model-api")
    entries = [line for line in content.splitlines() if line.strip() and not line.startswith("#")]
    assert sorted(entries) == sorted([f"clients={secret('api_key')}", f"dashboard={secret('dashboard_api_key')}"])


@pytest.mark.parametrize("name", ["api_key", "dashboard_api_key"], ids=["clients", "dashboard"])
def test_both_named_keys_are_accepted(host, model_version, name):
    status, body = _curl(host, f"/models/{MODEL}", f"-H 'X-API-Key: {secret(name)}'")
    assert status == 200, body


def test_a_key_not_in_the_file_is_refused(host, model_version):
    # long enough and well-formed, but not one of the keys
    assert _curl(host, f"/models/{MODEL}", "-H 'X-API-Key: not-a-key-of-this-platform-0123456789'")[0] == 401
    status, _ = _predict(host, "champion", {"data": [[5.1, 3.5, 1.4, 0.2]]}, key="not-a-key-of-this-platform-0123")
    assert status == 401


def test_the_access_log_names_the_key_never_the_key_itself(host, model_version):
    _curl(host, f"/models/{MODEL}", f"-H 'X-API-Key: {secret('dashboard_api_key')}'")
    log = host.check_output("journalctl -u oci-mlops-api --no-pager -n 200 -o cat")
    assert '"api_key": "dashboard"' in log
    assert secret("dashboard_api_key") not in log and secret("api_key") not in log


def test_health_and_ready(host):
    assert _curl(host, "/health")[0] == 200
    status, body = _curl(host, "/ready")
    assert status == 200, body


def test_prediction_with_key(host, model_version):
    status, body = _predict(host, "champion", {"data": [[5.1, 3.5, 1.4, 0.2]]})
    assert status == 200, body
    answer = json.loads(body)
    assert answer["model_name"] == MODEL
    assert str(answer["model_version"]) == model_version
    assert answer["predictions"] == [0]


def test_seeds_stage_name_maps_to_champion(host, model_version):
    status, body = _predict(host, "Production", {"data": [[5.1, 3.5, 1.4, 0.2]]})
    assert status == 200, body


def test_prediction_without_key_refused(host, model_version):
    status, _ = _predict(host, "champion", {"data": [[5.1, 3.5, 1.4, 0.2]]}, key=False)
    assert status == 401


def test_models_need_the_key(host, model_version):
    assert _curl(host, "/models")[0] == 401
    status, body = _curl(host, f"/models/{MODEL}", f"-H 'X-API-Key: {secret('api_key')}'")
    assert status == 200, body
    assert json.loads(body)["aliases"].get("champion") in (model_version, int(model_version))


def test_unknown_model_is_404_and_bad_input_422(host, model_version):
    assert _predict(host, "champion", {"data": [[1.0]]})[0] == 422
    assert _predict(host, "99999", {"data": [[5.1, 3.5, 1.4, 0.2]]})[0] == 404


def test_metrics_count_predictions(host, model_version):
    _predict(host, "champion", {"data": [[5.1, 3.5, 1.4, 0.2]]})
    status, body = _curl(host, "/metrics")
    assert status == 200
    assert "oci_mlops_http_requests_total" in body


def test_firewall_opens_the_api_port_to_its_clients_hosts_only(host):
    # model_api_client_cidrs' default behind the edge: the topology's clients of the API, the
    # edge and the api hosts (the dashboard), each a /32.
    assert port_rules(host, 8000) == client_rules(8000, sitekit.ip(EDGE), sitekit.ip(API))
    assert "8000/tcp" not in host.check_output("firewall-cmd --list-ports").split()


def test_unit_is_hardened(host):
    score = host.check_output("systemd-analyze security oci-mlops-api.service --no-pager | tail -1")
    assert "OK" in score or "SAFE" in score, score
    # model_api_memory_max / _tasks_max (systemd_service applies them to every unit)
    assert unit_caps(host, "oci-mlops-api") == (str(2 * 1024**3), "512")
