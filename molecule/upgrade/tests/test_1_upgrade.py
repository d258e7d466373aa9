"""After the upgrade from the previous release (prepare.yml) to the current pins (converge.yml).

A backup preceded the migrations, each migration ran once, the services are
healthy at the current releases, and the data created before the upgrade
reads the same through MLflow's client and Airflow's REST API.
"""

import ipaddress
import json
import os
import shlex
import time
from pathlib import Path

import pytest
import requests
import testinfra
import yaml

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
REPO = Path(__file__).resolve().parents[3]
MLFLOW_DEFAULTS = yaml.safe_load((REPO / "ansible/roles/mlflow/defaults/main.yml").read_text())
AIRFLOW_DEFAULTS = yaml.safe_load((REPO / "ansible/roles/airflow/defaults/main.yml").read_text())
DATA = json.loads((Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "upgrade-data.json").read_text())
MLFLOW_PYTHON = "/opt/mlflow/venv/bin/python"
AIRFLOW_PYTHON = "/opt/airflow/venv/bin/python"
MLFLOW_LOG = "/var/lib/mlflow/schema-migrations.log"
AIRFLOW_LOG = "/opt/airflow/db-migrations.log"
AIRFLOW_SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")


def _host(name):
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=INVENTORY)


def _secret(name):
    return (Path(INVENTORY).parent / ".secrets" / name).read_text().split()[0]


def _ipv4(host):
    return next(a for a in host.interface("eth0").addresses if ipaddress.ip_address(a).version == 4)


def _lines(host, path):
    assert host.file(path).exists, f"{path}: no migration was recorded"
    return [line.split() for line in host.file(path).content_string.splitlines() if line.strip()]


def _field(words, name):
    return next(w.split("=", 1)[1] for w in words if w.startswith(name + "="))


@pytest.fixture(scope="module")
def db():
    return _host("mol-upgrade-db")


@pytest.fixture(scope="module")
def mlflow_host():
    return _host("mol-upgrade-mlflow")


@pytest.fixture(scope="module")
def airflow_host():
    return _host("mol-upgrade-airflow")


@pytest.fixture(scope="module")
def backups_after(db):
    cmd = db.run("/usr/local/sbin/oci-mlops-backup list")
    assert cmd.rc == 0, cmd.stderr
    return {line.split()[0]: line.split()[1] for line in cmd.stdout.splitlines() if line.strip()}


@pytest.fixture(scope="module")
def airflow(airflow_host):
    api = f"http://{_ipv4(airflow_host)}:8080"
    resp = requests.post(
        f"{api}/auth/token", json={"username": "admin", "password": _secret("airflow_admin_password")}, timeout=30
    )
    assert resp.status_code == 201, resp.text
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"
    return api, session


def _installed(host, python, dist):
    cmd = host.run(f"{python} -c {shlex.quote(f'import importlib.metadata as m; print(m.version({dist!r}))')}")
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def test_the_previous_release_was_the_one_upgraded():
    assert DATA["mlflow"]["mlflow_version"] == "3.16.1"
    assert DATA["airflow"]["version"] == "3.2.2"
    assert MLFLOW_DEFAULTS["mlflow_version"] != "3.16.1"
    assert AIRFLOW_DEFAULTS["airflow_version"] != "3.2.2"


def test_current_releases_installed(mlflow_host, airflow_host):
    assert _installed(mlflow_host, MLFLOW_PYTHON, "mlflow") == MLFLOW_DEFAULTS["mlflow_version"]
    assert _installed(airflow_host, AIRFLOW_PYTHON, "apache-airflow") == AIRFLOW_DEFAULTS["airflow_version"]


@pytest.mark.parametrize(("which", "log"), [("mlflow", MLFLOW_LOG), ("airflow", AIRFLOW_LOG)])
def test_each_migration_ran_once_after_a_new_complete_backup(which, log, mlflow_host, airflow_host, backups_after):
    host = mlflow_host if which == "mlflow" else airflow_host
    lines = _lines(host, log)
    # The fresh install of the previous release is not recorded (nothing to
    # back up): exactly one line, the upgrade's. (That a later run migrates
    # nothing is the site scenario's: its drift suite's last run reports
    # changed=0, and a migration always reports changed.)
    assert len(lines) == 1, lines
    migrated_at, name, version = lines[0][:3]
    assert name == which
    expected = MLFLOW_DEFAULTS["mlflow_version"] if which == "mlflow" else AIRFLOW_DEFAULTS["airflow_version"]
    assert version == expected
    backup = _field(lines[0], "backup")
    assert backup != "none", f"{which} migrated without a backup"
    assert backup not in DATA["backups_before"], "the backup named is older than the upgrade"
    assert backups_after.get(backup) == "complete", backups_after
    # Taken after the previous release was prepared, before the migration.
    assert DATA["prepared_at"] <= backup <= migrated_at.replace("-", "").replace(":", "")


def test_schemas_at_head(mlflow_host):
    cmd = mlflow_host.run(
        "systemd-run --pipe --wait --collect --quiet --property=EnvironmentFile=/etc/mlflow/mlflow.env "
        f"--property=UnsetEnvironment=HOME -- {MLFLOW_PYTHON} /opt/mlflow/mlflow-schema.py status"
    )
    assert cmd.rc == 0, cmd.stderr
    for schema, revisions in json.loads(cmd.stdout).items():
        assert revisions["current"] == revisions["head"], (schema, revisions)


@pytest.mark.parametrize("unit", ["mlflow"] + [f"airflow-{s}" for s in AIRFLOW_SERVICES])
def test_services_active(unit, mlflow_host, airflow_host):
    host = mlflow_host if unit == "mlflow" else airflow_host
    assert host.service(unit).is_running


def test_airflow_healthy(airflow):
    api, _ = airflow
    health = requests.get(f"{api}/api/v2/monitor/health", timeout=30).json()
    assert health["metadatabase"]["status"] == "healthy", health
    assert health["scheduler"]["status"] == "healthy", health


def test_mlflow_data_intact_through_the_client(mlflow_host):
    script = """
import json, os
from mlflow import MlflowClient
c = MlflowClient()
model = os.environ["UPGRADE_MODEL"]
e = c.get_experiment_by_name(os.environ["UPGRADE_EXPERIMENT"])
runs = {}
for r in c.search_runs([e.experiment_id]):
    runs[r.info.run_id] = {
        "name": r.info.run_name, "status": r.info.status, "params": r.data.params,
        "rmse": [m.value for m in sorted(c.get_metric_history(r.info.run_id, "rmse"), key=lambda m: m.step)],
        "artifacts": [f.path for f in c.list_artifacts(r.info.run_id, "model")],
    }
versions = {v.version: v.run_id for v in c.search_model_versions(f"name='{model}'")}
print(json.dumps({"experiment_id": e.experiment_id, "runs": runs, "versions": versions,
                  "champion": c.get_model_version_by_alias(model, "champion").version}))
"""
    env = {
        "MLFLOW_TRACKING_URI": "http://mol-upgrade-mlflow:5000",
        "MLFLOW_TRACKING_USERNAME": "admin",
        "MLFLOW_TRACKING_PASSWORD": _secret("mlflow_admin_password"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "UPGRADE_EXPERIMENT": DATA["mlflow"]["experiment"],
        "UPGRADE_MODEL": DATA["mlflow"]["model"],
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    cmd = mlflow_host.run(f"cd /tmp && env {exports} timeout 300 {MLFLOW_PYTHON} -c {shlex.quote(script)}")
    assert cmd.rc == 0, cmd.stderr[-3000:]
    found = json.loads(cmd.stdout.strip().splitlines()[-1])
    before = DATA["mlflow"]
    assert found["experiment_id"] == before["experiment_id"]
    assert set(found["runs"]) == set(before["runs"])
    for run_id, run in before["runs"].items():
        after = found["runs"][run_id]
        assert after["name"] == run["name"]
        assert after["status"] == "FINISHED"
        assert after["params"] == run["params"]
        assert after["rmse"] == pytest.approx(run["rmse"])
        assert "model/MLmodel" in after["artifacts"]
    assert found["versions"] == before["versions"]
    assert found["champion"] == before["champion"]


def test_airflow_data_intact_through_the_rest_api(airflow):
    api, session = airflow
    ids = DATA["airflow"]
    run = session.get(f"{api}/api/v2/dags/{ids['dag_id']}/dagRuns/{ids['dag_run_id']}", timeout=30)
    assert run.status_code == 200, run.text
    assert run.json()["state"] == "success"
    assert run.json()["conf"] == {"upgrade": "previous-release"}
    tis = session.get(f"{api}/api/v2/dags/{ids['dag_id']}/dagRuns/{ids['dag_run_id']}/taskInstances", timeout=30)
    assert tis.status_code == 200, tis.text
    assert [ti["state"] for ti in tis.json()["task_instances"]] == ["success"]
    variable = session.get(f"{api}/api/v2/variables/{ids['variable']}", timeout=30)
    assert variable.status_code == 200, variable.text
    assert variable.json()["value"] == ids["dag_run_id"]


def test_encrypted_connection_readable_after_the_upgrade(airflow_host):
    # The REST API masks passwords: `airflow connections get` decrypts it with
    # the fernet key, as the service user with the services' environment
    # (the airflow role's airflow_cli).
    cmd = airflow_host.run(
        "systemd-run --pipe --wait --collect --quiet --property=EnvironmentFile=/etc/airflow/airflow.env "
        "--property=WorkingDirectory=/var/lib/airflow --uid=airflow -- "
        "/opt/airflow/venv/bin/airflow connections get upgrade_check -o json"
    )
    assert cmd.rc == 0, cmd.stderr[-3000:]
    conn = json.loads(cmd.stdout)[0]
    assert (conn["login"], conn["password"]) == ("upgrader", "before-the-upgrade")


def test_a_new_run_after_the_upgrade_succeeds(airflow):
    api, session = airflow
    resp = session.post(f"{api}/api/v2/dags/molecule_ok/dagRuns", json={"logical_date": None}, timeout=30)
    assert resp.status_code == 200, resp.text
    run_id = resp.json()["dag_run_id"]
    deadline = time.monotonic() + 300
    state = None
    while time.monotonic() < deadline:
        state = session.get(f"{api}/api/v2/dags/molecule_ok/dagRuns/{run_id}", timeout=30).json()["state"]
        if state in ("success", "failed"):
            break
        time.sleep(3)
    assert state == "success"
