"""Airflow 3 serves, authenticates, runs DAGs, and follows the DAG bucket.

The tests run in file order: the DAG sync tests change the bucket.
"""

import ipaddress
import os
import runpy
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
import testinfra
import testinfra.utils.ansible_runner
import yaml

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("airflow")

FILES = Path(__file__).resolve().parent.parent / "files"
DEFAULTS = yaml.safe_load((Path(__file__).resolve().parents[3] / "ansible/roles/airflow/defaults/main.yml").read_text())
PIPELINES_PINS = dict(p.lower().split("==") for p in DEFAULTS["airflow_pipelines_packages"])
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
BUCKET = "airflow-dags"
# The DAG sync's own credentials (the airflow host's only object-store key: read-only).
RCLONE = "set -a && . /etc/airflow/dag-sync.env && set +a && /opt/airflow/rclone/bin/rclone"
# The bucket as the object store keeps it: a file there is an object (the tests
# write the bucket as a publisher would; the airflow host cannot).
BUCKET_DIR = f"/var/lib/object-store/{BUCKET}"
# Where the measured figures go (read by docs/airflow.md's author).
MEASURES = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/tmp")) / "measures.txt"


def _secret(name):
    return (Path(INVENTORY).parent / ".secrets" / name).read_text().split()[0]


def _ipv4(host):
    return next(a for a in host.interface("eth0").addresses if ipaddress.ip_address(a).version == 4)


def _measure(line):
    with MEASURES.open("a", encoding="utf-8") as out:
        out.write(line + "\n")


@pytest.fixture(scope="module")
def api(host):
    return f"http://{_ipv4(host)}:8080"


@pytest.fixture(scope="module")
def token(api):
    resp = requests.post(
        f"{api}/auth/token", json={"username": "admin", "password": _secret("airflow_admin_password")}, timeout=30
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["access_token"]


@pytest.fixture(scope="module")
def session(token):
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    return s


@pytest.fixture(scope="module")
def objectstore():
    db = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("objectstore")[0]
    return testinfra.get_host(f"ansible://{db}", ansible_inventory=INVENTORY)


def _wait(predicate, timeout, step=2):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(step)
    return None


def _publish(objectstore, name, content=None):
    src = FILES / name if content is None else None
    body = src.read_text() if src else content
    objectstore.check_output(f"cat > /tmp/{name} <<'EOF'\n{body}\nEOF")
    objectstore.check_output(f"install -o object-store -g object-store -m 0640 /tmp/{name} {BUCKET_DIR}/{name}")


def _dag_listed(session, api, dag_id):
    resp = session.get(f"{api}/api/v2/dags", params={"dag_id_pattern": dag_id}, timeout=30)
    resp.raise_for_status()
    return dag_id in [d["dag_id"] for d in resp.json()["dags"]]


@pytest.mark.parametrize("service", SERVICES)
def test_service_running_and_enabled(host, service):
    unit = host.service(f"airflow-{service}")
    assert unit.is_running
    assert unit.is_enabled
    assert host.check_output(f"systemctl show -p User --value airflow-{service}") == "airflow"


# airflow_<unit>_memory_max / _tasks_max with the lab's airflow_api_workers (1) and the
# default airflow_parallelism (8): the scheduler's unit also runs the tasks.
CAPS = {
    "api-server": (1024 * 1024**2, 512),
    "scheduler": (4096 * 1024**2, 1024),
    "dag-processor": (1024**3, 256),
    "triggerer": (1024**3, 256),
    "dag-sync": (512 * 1024**2, 128),
}


@pytest.mark.parametrize("unit", CAPS)
def test_units_have_their_resource_caps(host, unit):
    props = dict(
        line.split("=", 1)
        for line in host.check_output(f"systemctl show airflow-{unit}.service -p MemoryMax -p TasksMax").splitlines()
    )
    memory, tasks = CAPS[unit]
    assert (props["MemoryMax"], props["TasksMax"]) == (str(memory), str(tasks))


def test_dag_sync_timer_active(host):
    assert host.service("airflow-dag-sync.timer").is_running
    assert host.service("airflow-dag-sync.timer").is_enabled


def test_secrets_are_not_world_readable(host):
    for path in ("/etc/airflow/airflow.env", "/etc/airflow/airflow.cfg", "/etc/airflow/pipelines.env"):
        f = host.file(path)
        assert f.user == "root"
        assert f.mode == 0o640
    # the secrets: one file each, read by airflow.cfg's `_cmd` options (issue #15 point 3)
    names = (
        "airflow_db_url",
        "airflow_db_url_async",
        "airflow_fernet_key",
        "airflow_api_secret_key",
        "airflow_jwt_secret",
    )
    assert sorted(host.file("/etc/airflow/credentials").listdir()) == sorted(names)
    for name in names:
        f = host.file(f"/etc/airflow/credentials/{name}")
        assert (f.user, f.group, f.mode) == ("root", "airflow", 0o440)
    # the bucket's key: root's alone (systemd reads it); a task, user airflow, cannot
    f = host.file("/etc/airflow/dag-sync.env")
    assert (f.user, f.group, f.mode) == ("root", "root", 0o600)
    assert host.run("runuser -u airflow -- cat /etc/airflow/dag-sync.env").rc != 0
    assert host.file("/opt/airflow/venv/bin/airflow").user == "root"


def test_no_secret_in_the_units_environment(host):
    """airflow.env (every unit's environment, which the tasks inherit) holds no secret."""
    env = host.file("/etc/airflow/airflow.env").content_string
    assert "AIRFLOW__" not in env
    for name in ("airflow_db_password", "airflow_jwt_secret", "airflow_api_secret_key", "s3_secret_key"):
        assert _secret(name) not in env, name
    for service in SERVICES:
        pid = host.check_output(f"systemctl show -p MainPID --value airflow-{service}")
        environ = host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ")
        assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in environ and _secret("airflow_jwt_secret") not in environ


def test_the_host_cannot_write_the_dag_bucket(host, objectstore):
    before = objectstore.check_output(f"ls {BUCKET_DIR}")
    host.check_output("printf 'x = 1\\n' > /tmp/probe.py")
    assert host.run(f"{RCLONE} lsf dags:{BUCKET}").rc == 0
    assert host.run(f"{RCLONE} copyto /tmp/probe.py dags:{BUCKET}/probe.py --retries 1 --low-level-retries 1").rc != 0
    assert host.run(f"{RCLONE} deletefile dags:{BUCKET}/molecule_ok.py --retries 1 --low-level-retries 1").rc != 0
    assert objectstore.check_output(f"ls {BUCKET_DIR}") == before


def test_pipelines_venv_runs_the_ml_stack_as_the_service_user(host):
    assert host.file("/opt/airflow/pipelines-venv/bin/python").user == "root"
    assert (
        "OCI_MLOPS_PIPELINES_PYTHON=/opt/airflow/pipelines-venv/bin/python"
        in host.file("/etc/airflow/airflow.env").content_string
    )
    run = host.run(
        "runuser -u airflow -- /opt/airflow/pipelines-venv/bin/python -c "
        "'import mlflow, sklearn, pandas, skops; print(mlflow.__version__, sklearn.__version__)'"
    )
    assert run.rc == 0, run.stderr
    assert run.stdout.split() == [PIPELINES_PINS["mlflow-skinny"], PIPELINES_PINS["scikit-learn"]]
    # only the scheduler (whose workers run the tasks) reads the MLflow settings
    assert "pipelines.env" in host.file("/etc/systemd/system/airflow-scheduler.service").content_string
    assert "pipelines.env" not in host.file("/etc/systemd/system/airflow-api-server.service").content_string


def test_health_reports_every_component_healthy(api):
    def healthy():
        data = requests.get(f"{api}/api/v2/monitor/health", timeout=30).json()
        return all(
            data.get(c, {}) and data[c]["status"] == "healthy"
            for c in ("metadatabase", "scheduler", "dag_processor", "triggerer")
        )

    assert _wait(healthy, 90) is not None


def test_unauthenticated_and_wrong_password_refused(api):
    assert requests.get(f"{api}/api/v2/dags", timeout=30).status_code == 401
    resp = requests.post(f"{api}/auth/token", json={"username": "admin", "password": "admin"}, timeout=30)
    assert resp.status_code == 401


def test_admin_token_lists_dags(session, api):
    resp = session.get(f"{api}/api/v2/dags", timeout=30)
    assert resp.status_code == 200
    assert "dags" in resp.json()


def test_published_dag_runs_to_success(session, api):
    # Published by the converge (publish-dags.yml with files/dags).
    assert _wait(lambda: _dag_listed(session, api, "molecule_ok"), 120) is not None
    resp = session.patch(f"{api}/api/v2/dags/molecule_ok", json={"is_paused": False}, timeout=30)
    assert resp.status_code == 200, resp.text
    resp = session.post(f"{api}/api/v2/dags/molecule_ok/dagRuns", json={"logical_date": None}, timeout=30)
    assert resp.status_code == 200, resp.text
    run_id = resp.json()["dag_run_id"]

    def state():
        return session.get(f"{api}/api/v2/dags/molecule_ok/dagRuns/{run_id}", timeout=30).json()["state"]

    waited = _wait(lambda: state() in ("success", "failed"), 180)
    assert waited is not None and state() == "success"
    _measure(f"trigger -> success: {waited:.0f} s")


def test_new_dag_appears_within_90s(objectstore, session, api):
    start = time.monotonic()
    _publish(objectstore, "molecule_new.py")
    waited = _wait(lambda: _dag_listed(session, api, "molecule_new"), 90, step=1)
    assert waited is not None, "molecule_new not listed 90 s after it was published"
    _measure(f"publish -> listed: {time.monotonic() - start:.0f} s")


def test_broken_dag_is_an_import_error_and_others_still_run(objectstore, session, api):
    _publish(objectstore, "molecule_broken.py")

    def import_error():
        errors = session.get(f"{api}/api/v2/importErrors", timeout=30).json()["import_errors"]
        return any(e["filename"].endswith("molecule_broken.py") for e in errors)

    assert _wait(import_error, 120) is not None
    resp = session.post(f"{api}/api/v2/dags/molecule_ok/dagRuns", json={"logical_date": None}, timeout=30)
    assert resp.status_code == 200, resp.text
    run_id = resp.json()["dag_run_id"]
    assert (
        _wait(
            lambda: (
                session.get(f"{api}/api/v2/dags/molecule_ok/dagRuns/{run_id}", timeout=30).json()["state"] == "success"
            ),
            180,
        )
        is not None
    )


def test_removed_dag_disappears(host, objectstore, session, api):
    objectstore.check_output(f"rm {BUCKET_DIR}/molecule_new.py")
    start = time.monotonic()
    assert _wait(lambda: not _dag_listed(session, api, "molecule_new"), 150) is not None
    _measure(f"delete -> unlisted: {time.monotonic() - start:.0f} s")
    assert not host.file("/var/lib/airflow-dags/current/molecule_new.py").exists


def test_unreachable_source_fails_visibly_and_keeps_the_dags(host, objectstore):
    # the DAG sync reads the object store's read-only endpoint
    objectstore.check_output("systemctl stop object-store-readonly")
    try:
        run = host.run("systemctl start airflow-dag-sync.service")
        assert run.rc != 0
        assert host.run("systemctl is-failed airflow-dag-sync.service").stdout.strip() == "failed"
        assert "airflow-dag-sync.service" in host.check_output("systemctl --failed --no-legend")
        assert host.file("/var/lib/airflow-dags/current/molecule_ok.py").exists
    finally:
        objectstore.check_output("systemctl start object-store-readonly")
    assert _wait(lambda: host.run("systemctl start airflow-dag-sync.service").rc == 0, 60) is not None
    assert host.run("systemctl is-failed airflow-dag-sync.service").stdout.strip() != "failed"


# --- TLS to MySQL (issue #14 point 5, #15 point 8) ---------------------------
# molecule/_shared/files/mysql_tls.py's functions (probe, connection_types).
MYSQL_TLS = SimpleNamespace(**runpy.run_path(str(Path(__file__).resolve().parents[2] / "_shared/files/mysql_tls.py")))


@pytest.fixture(scope="module")
def tls_probe(host):
    return MYSQL_TLS.probe(
        host, "airflow", "airflow", "/etc/airflow/airflow.env", "/opt/airflow/venv/bin/python", "/var/lib/airflow"
    )


@pytest.mark.parametrize("engine", ["sync", "async"])
def test_both_airflow_engines_connect_with_verified_tls(tls_probe, engine):
    """airflow.settings' two engines (sync mysqlclient, async aiomysql), with
    the service's own configuration, open TLS 1.2+ sessions."""
    assert tls_probe[("SESSION", engine)] in ("TLSv1.2", "TLSv1.3"), tls_probe


@pytest.mark.parametrize("case", ["no-tls", "wrong-ca"])
@pytest.mark.parametrize("engine", ["sync", "async"])
def test_both_engines_refuse_a_server_without_tls_or_with_another_ca(tls_probe, engine, case):
    """Each engine's configuration pointed at a fake server: no login reaches
    one that offers no TLS (aiomysql alone would fall back to plaintext) or
    presents another CA's certificate."""
    assert tls_probe[("REFUSED", engine, case)] == "yes", tls_probe


def test_every_airflow_connection_on_the_db_is_tls(objectstore, session, api):
    # objectstore is the db host too (molecule.yml); a request makes the api-server use its pool.
    assert session.get(f"{api}/api/v2/dags", timeout=30).status_code == 200
    connections = MYSQL_TLS.connection_types(objectstore, ["airflow"])
    assert connections, "Airflow holds no connection to MySQL"
    assert {kind for _, kind in connections} == {"SSL/TLS"}, connections
