"""The mlflow role's suite on the mlflow host: the MLflow server, driven with the real MLflow
client (the server's virtualenv, on the mlflow host) and over HTTP from the airflow host (behind
the edge the server listens on its private address and admits only its clients' hosts; a peer
on the mlflow host itself is never sign-in limited, so HTTP comes from a client host).

It ran in the serving scenario until that joined this one; its kill -9 test is the fault suite's
(test_3_faults.py, every unit). Last of the role suites: its last test spends the airflow host's
address's sign-in budget for the limiter's window (60 s), which the next suites do not need (the
airflow host calls MLflow only from DAG tasks, the fault suite's minutes later; the limiter's
window is over before the drift suite's first converge ends).
"""

import json
import runpy
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import sitekit
import testinfra
from rolekit import client_rules, port_rules, unit_caps
from sitekit import AIRFLOW, API, DB, EDGE, MLFLOW

INVENTORY = sitekit.INVENTORY
testinfra_hosts = [MLFLOW]

PORT = 5000
ADDRESS = sitekit.ip(MLFLOW)
VENV_PYTHON = "/opt/mlflow/venv/bin/python"
BUCKET_DIR = "/var/lib/object-store/mlflow-artifacts"
DEFAULTS = sitekit.role_defaults("mlflow")


def _record(**values):
    """A measured figure, to the site report."""
    for key, value in values.items():
        sitekit.report(f"mlflow server: {key} = {json.dumps(value)}")


# Where the HTTP tests call from: one of MLflow's clients (its firewall admits it; not local).
CALLER = AIRFLOW


def _requests(*requests_):
    """HTTP requests from the caller host (sitekit.http_from): (status, seconds, body) each."""
    return sitekit.http_from(CALLER, list(requests_))


def _http(url, user=None, password=None, method="GET", body=None, headers=None):
    """One request from the caller host: (status, body)."""
    request = {"url": url, "method": method, "body": body, "headers": headers or {}}
    if user is not None:
        request.update(user=user, password=password)
    status, _, text = _requests(request)[0]
    return status, text


@pytest.fixture(scope="module")
def admin():
    return ("admin", sitekit.secret("mlflow_admin_password"))


@pytest.fixture(scope="module")
def reader() -> tuple[str, str]:
    return ("mlflow-reader", sitekit.secret("mlflow_readonly_password"))


@pytest.fixture(scope="module")
def objectstore():
    return testinfra.get_host(f"ansible://{DB}", ansible_inventory=INVENTORY)


LOG_AND_REGISTER = """
import json, mlflow, numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
name = "{name}"
mlflow.set_experiment(name)
X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
with mlflow.start_run() as run:
    mlflow.log_param("C", 1.0)
    mlflow.log_metric("accuracy", 1.0)
    info = mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model", registered_model_name=name)
client = MlflowClient()
version = client.search_model_versions(f"name = '{{name}}'")[0].version
client.set_registered_model_alias(name, "champion", version)
run = client.get_run(run.info.run_id)
loaded = mlflow.sklearn.load_model(f"models:/{{name}}@champion")
print(json.dumps({{"experiment_id": run.info.experiment_id, "run_id": run.info.run_id,
                  "model_id": info.model_id, "version": version,
                  "params": run.data.params, "metrics": run.data.metrics,
                  "alias_version": client.get_model_version_by_alias(name, "champion").version,
                  "prediction": loaded.predict(np.array([[0.0], [3.0]])).tolist()}}))
"""

READ_THEN_WRITE = """
import json, mlflow, numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
client = MlflowClient()
out = {{}}
out["metrics"] = client.get_run("{run_id}").data.metrics
out["prediction"] = mlflow.pyfunc.load_model("models:/{name}@champion").predict(np.array([[0.0], [3.0]])).tolist()
for label, write in [("log_metric", lambda: client.log_metric("{run_id}", "hacked", 1.0)),
                     ("set_alias", lambda: client.set_registered_model_alias("{name}", "hacked", "1")),
                     ("delete_experiment", lambda: client.delete_experiment("{experiment_id}"))]:
    try:
        write()
        out[label] = "allowed"
    except MlflowException as exc:
        out[label] = exc.get_http_status_code()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def logged(admin):
    name = f"molecule-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    result = sitekit.mlflow_client(LOG_AND_REGISTER.format(name=name), *admin)
    result["name"] = name
    _record(client_log_register_seconds=round(time.monotonic() - started, 1))
    return result


def test_server_runs_as_its_own_user_from_a_root_owned_venv(host):
    svc = host.service("mlflow")
    assert svc.is_running and svc.is_enabled
    pid = host.check_output("systemctl show -p MainPID --value mlflow")
    assert host.check_output(f"stat -c %U /proc/{pid}") == "mlflow"
    assert host.file("/opt/mlflow/venv").user == "root"
    assert host.run("runuser -u mlflow -- touch /opt/mlflow/venv/bin/probe").rc != 0
    assert f"mlflow=={DEFAULTS['mlflow_version']}" in host.check_output("/opt/mlflow/venv/bin/pip freeze").splitlines()


def test_secret_files_are_readable_by_the_service_group_only(host):
    for path in ("/etc/mlflow/mlflow.env", "/etc/mlflow/basic_auth.ini"):
        f = host.file(path)
        assert (f.user, f.group, f.mode) == ("root", "mlflow", 0o640), path


def test_no_secret_on_the_command_line(host):
    cmdlines = host.check_output("ps -eo args")
    assert sitekit.secret("mlflow_db_password") not in cmdlines
    assert sitekit.secret("mlflow_admin_password") not in cmdlines


def test_environment(host):
    pid = host.check_output("systemctl show -p MainPID --value mlflow")
    env = dict(line.split("=", 1) for line in host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ").splitlines())
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert env["MLFLOW_BOTO_CLIENT_ADDRESSING_STYLE"] == "path"
    assert env["AWS_REQUEST_CHECKSUM_CALCULATION"] == env["AWS_RESPONSE_CHECKSUM_VALIDATION"] == "when_required"
    # By private address, not inventory name: clients outside the lab network
    # receive presigned URLs of this endpoint and must be able to reach it.
    assert env["MLFLOW_S3_ENDPOINT_URL"] == f"http://{sitekit.ip(DB)}:9000"
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("mysql+pymysql://mlflow:")


def test_unit_is_hardened(host):
    out = host.check_output("systemd-analyze security --no-pager mlflow.service | tail -1")
    score = float(out.split("mlflow.service:")[1].split()[0])
    _record(systemd_analyze_security=out.split("mlflow.service:")[1].strip())
    assert score <= 2.0, out
    assert unit_caps(host, "mlflow") == (str(2 * 1024**3), "512")  # mlflow_memory_max / _tasks_max


def test_schemas_are_at_head(host):
    cmd = host.run(
        "set -a && . /etc/mlflow/mlflow.env && MLFLOW_AUTH_DATABASE_URI=$MLFLOW_BACKEND_STORE_URI "
        f"{VENV_PYTHON} /opt/mlflow/mlflow-schema.py status"
    )
    assert cmd.rc == 0, cmd.stderr
    status = json.loads(cmd.stdout)
    for schema in ("tracking", "auth"):
        assert status[schema]["current"] == status[schema]["head"] is not None, status


def test_health_needs_no_login_but_the_api_does():
    base = f"http://{ADDRESS}:{PORT}"
    assert _http(f"{base}/health")[0] == 200
    assert _http(f"{base}/api/2.0/mlflow/experiments/search?max_results=1")[0] == 401
    assert _http(f"{base}/api/2.0/mlflow/experiments/search?max_results=1", "admin", "wrong-password-123")[0] == 401


def test_unknown_host_header_is_rejected():
    # --allowed-hosts: an unlisted Host header is refused before authentication (/health is exempt).
    url = f"http://{ADDRESS}:{PORT}/api/2.0/mlflow/experiments/search?max_results=1"
    for host_header, expected in (("evil.example:5000", 403), (f"{ADDRESS}:{PORT}", 401)):
        assert _http(url, headers={"Host": host_header})[0] == expected, host_header


def test_admin_logs_params_metrics_and_a_registered_model(logged):
    assert logged["params"] == {"C": "1.0"}
    assert logged["metrics"] == {"accuracy": 1.0}
    assert logged["alias_version"] == logged["version"] == "1"
    assert logged["prediction"] == [0, 1]


def test_model_artifacts_are_in_the_bucket(logged, objectstore):
    model_dir = f"models/m-{logged['model_id'].removeprefix('m-')}"
    found = objectstore.check_output(
        f"find {BUCKET_DIR} -path '*/{model_dir}/artifacts/*' -type f -printf '%P\\n'"
    ).splitlines()
    assert any(p.endswith("/MLmodel") for p in found), found
    assert any(p.endswith("/model.pkl") or p.endswith("/model.skops") for p in found), found


def test_reader_reads_but_cannot_write(logged, reader):
    out = sitekit.mlflow_client(READ_THEN_WRITE.format(**logged), *reader)
    assert out["metrics"] == {"accuracy": 1.0}
    assert out["prediction"] == [0, 1]
    assert out["log_metric"] == out["set_alias"] == out["delete_experiment"] == 403, out


def test_reader_is_not_an_admin(reader: tuple[str, str]):
    base = f"http://{ADDRESS}:{PORT}"
    status, body = _http(f"{base}/api/2.0/mlflow/users/current", *reader)
    assert status == 200
    assert json.loads(body)["user"]["is_admin"] is False
    assert (
        _http(
            f"{base}/api/2.0/mlflow/users/create",
            *reader,
            method="POST",
            body={"username": "intruder", "password": "x" * 16},
        )[0]
        == 403
    )


# --- TLS to MySQL (issue #14 point 5, #15 point 8) ---------------------------
# molecule/_shared/files/mysql_tls.py's functions (probe, connection_types).
MYSQL_TLS = SimpleNamespace(**runpy.run_path(str(Path(__file__).resolve().parents[2] / "_shared/files/mysql_tls.py")))


@pytest.fixture(scope="module")
def db():
    return testinfra.get_host(f"ansible://{DB}", ansible_inventory=INVENTORY)


@pytest.fixture(scope="module")
def tls_probe(host):
    return MYSQL_TLS.probe(host, "mlflow", "mlflow", "/etc/mlflow/mlflow.env", VENV_PYTHON, "/var/lib/mlflow")


@pytest.mark.parametrize("engine", ["backend", "auth"])
def test_the_servers_own_uris_connect_with_verified_tls(tls_probe, engine):
    """The backend store and the basic-auth database URIs, exactly as the
    service has them, open TLS 1.2+ sessions (verified against the CA file)."""
    assert tls_probe[("SESSION", engine)] in ("TLSv1.2", "TLSv1.3"), tls_probe


@pytest.mark.parametrize("case", ["no-tls", "wrong-ca"])
@pytest.mark.parametrize("engine", ["backend", "auth"])
def test_the_uris_refuse_a_server_without_tls_or_with_another_ca(tls_probe, engine, case):
    """The same URIs pointed at a fake server: no login reaches one that offers
    no TLS (no plaintext fallback) or presents another CA's certificate."""
    assert tls_probe[("REFUSED", engine, case)] == "yes", tls_probe


def test_every_mlflow_connection_on_the_db_is_tls(db):
    # An authenticated request: the server reads its auth and tracking tables (its pool keeps the connections).
    url = f"http://{ADDRESS}:{PORT}/api/2.0/mlflow/experiments/search?max_results=1"
    assert _http(url, "admin", sitekit.secret("mlflow_admin_password"))[0] == 200
    connections = MYSQL_TLS.connection_types(db, ["mlflow"])
    assert connections, "the MLflow server holds no connection to MySQL"
    assert {kind for _, kind in connections} == {"SSL/TLS"}, connections


def test_the_ca_file_is_the_platforms(host):
    ca = host.file("/etc/mlflow/mysql-ca.pem")
    assert ca.exists and ca.user == "root" and ca.mode == 0o644
    assert "-----BEGIN CERTIFICATE-----" in ca.content_string
    env = host.file("/etc/mlflow/mlflow.env").content_string
    uri = next(line for line in env.splitlines() if line.startswith("MLFLOW_BACKEND_STORE_URI="))
    assert "ssl_ca=/etc/mlflow/mysql-ca.pem" in uri and "ssl_check_hostname=true" in uri


def test_the_credential_cache_and_the_sign_in_limiter_are_configured(host):
    ini = host.file("/etc/mlflow/basic_auth.ini").content_string
    assert f"auth_cache_ttl_seconds = {DEFAULTS['mlflow_auth_cache_ttl']}" in ini.splitlines()
    assert (
        "authorization_function = oci_mlops_auth_throttle:authenticate_request_basic_auth_throttled" in ini.splitlines()
    )
    module = host.file("/opt/mlflow/lib/oci_mlops_auth_throttle.py")
    assert (module.user, module.group, module.mode) == ("root", "root", 0o644)
    pid = host.check_output("systemctl show -p MainPID --value mlflow")
    env = dict(line.split("=", 1) for line in host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ").splitlines())
    assert env["PYTHONPATH"] == "/opt/mlflow/lib"
    assert env["OCI_MLOPS_AUTH_FAILED_LIMIT"] == str(DEFAULTS["mlflow_auth_failed_login_limit"])


def test_the_ui_offers_logout_and_change_password(admin):
    """MLflow's UI shows "Logout" and "Change password" only when /users/current reports
    is_basic_auth, which MLflow bases on the name of the authorization function: the limiter's
    view says so. The UI's Logout sends a throwaway user whose password is its name: MLflow's
    401 every time, and no failure counted (a wrong password after more than limit x workers of
    them is still checked: 401, not 429)."""
    url = f"http://{ADDRESS}:{PORT}/ajax-api/2.0/mlflow/users/current"
    status, body = _http(url, *admin)
    assert status == 200, body
    assert json.loads(body)["is_basic_auth"] is True, body
    for _ in range(2 * DEFAULTS["mlflow_auth_failed_login_limit"] + 2):
        logout = f"mlflow-logged-out-{uuid.uuid4().hex[:12]}"
        assert _http(url, logout, logout)[0] == 401
    assert _http(url, "admin", "a-wrong-password")[0] == 401


def test_the_firewall_opens_5000_to_its_clients_hosts_only(host):
    # mlflow_client_cidrs' default behind the edge: the topology's clients of MLflow (the edge,
    # the airflow hosts' tasks, the api hosts' API and dashboard), each a /32.
    expected = client_rules(PORT, *(sitekit.ip(h) for h in (EDGE, AIRFLOW, API)))
    assert port_rules(host, PORT) == expected
    assert f"{PORT}/tcp" not in host.check_output("firewall-cmd --list-ports").split()


# Last in the file: it spends the caller's address's sign-in budget.
def test_a_flood_of_wrong_passwords_is_refused_without_hashing(admin):
    """From the caller host (one client address, timed there): after the limit's worth of wrong
    passwords per worker (each one hashed: ~0.4 s), the rest get 429 at once; the admin, verified
    before, still gets in."""
    url = f"http://{ADDRESS}:{PORT}/api/2.0/mlflow/experiments/search?max_results=1"
    as_admin = {"url": url, "user": admin[0], "password": admin[1]}
    # fresh connections: both workers verify the admin's password once
    before = _requests(*[as_admin] * 20)
    assert [status for status, _, _ in before] == [200] * 20, before
    flood = _requests(*[{"url": url, "user": "admin", "password": f"wrong-password-{i}"} for i in range(40)])
    after = _requests(*[as_admin] * 10)
    timings: dict[int, list[float]] = {}
    for status, seconds, _ in flood:
        timings.setdefault(status, []).append(seconds)
    limit, workers = DEFAULTS["mlflow_auth_failed_login_limit"], 2
    counts = {status: len(times) for status, times in timings.items()}
    _record(
        wrong_password_flood={
            "statuses": counts,
            "median_seconds": {s: sorted(t)[len(t) // 2] for s, t in timings.items()},
        }
    )
    assert set(counts) == {401, 429}, counts
    assert counts[401] <= limit * workers, counts
    assert sorted(timings[429])[len(timings[429]) // 2] < 0.1, "a throttled guess still costs a hash"
    assert [status for status, _, _ in after] == [200] * 10, after
