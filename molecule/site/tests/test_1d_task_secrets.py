"""DAG authors' tasks hold none of the platform's secrets and cannot write the DAG bucket (issue #15 point 3).

A test DAG of this scenario only (files/task_secrets/oci_mlops_task_env.py,
never in dags/) is published next to dags/ with the publishing playbook (from
the controller) and triggered through Airflow's REST API at the edge. Its two
tasks (one in the task process the LocalExecutor forks, one in the pipelines
virtualenv as the product's DAGs run) return their whole os.environ: none of
the scenario's generated secrets (nor the Fernet key derived from one, nor the
database URLs holding a password) may be in it; the task's own MLflow
credentials (mlflow-pipelines) must be. Then, on the airflow host, the DAG
sync's own credentials (the only object-store key the host holds) must be
refused every write and delete in the bucket, at the read-only endpoint they
belong to and at the read-write one. Runs after test_1c (which publishes
dags/ again): the last test publishes dags/ once more, which deletes the test
DAG from the bucket.
"""

import json
import re
import shutil
from pathlib import Path

import sitekit
import yaml
from cmdline_sampler import secret_values
from sitekit import AIRFLOW, DB
from test_1c_command_line_secrets import DECLARED, _fernet

DAG_ID = "oci_mlops_task_env"
DAG_FILE = Path(__file__).resolve().parents[1] / "files" / "task_secrets" / f"{DAG_ID}.py"
TASKS = ("in_process", "pipelines")
BUCKET = "airflow-dags"  # inventory/lab/group_vars/all/lab.yml, oci_mlops_dags_bucket
PROBE = "oci_mlops_write_probe.py"
STATE: dict = {}
# The task's own secret: pipelines.env gives the tasks mlflow-pipelines' password (they log to MLflow).
OWN = "mlflow_pipelines_password"


def _secrets() -> dict:
    values = secret_values(sitekit.SECRETS_DIR, DECLARED, _fernet())
    wanted = {"airflow_db_password", "airflow_jwt_secret", "airflow_api_secret_key", "airflow_fernet_key (derived)",
              "airflow_admin_password", "s3_secret_key", "s3_dags_reader_secret_key", OWN}  # fmt: skip
    assert wanted <= set(values), sorted(wanted - set(values))
    return values


def _decoded(value) -> dict:
    """The task's return value as the REST API gives it (serialized, maybe quoted): hex of a JSON document."""
    text = value if isinstance(value, str) else json.dumps(value)
    hexes = re.findall(r"[0-9a-f]{64,}", text)
    assert hexes, f"no hex-encoded environment in the XCom value: {text[:300]}"
    return json.loads(bytes.fromhex(max(hexes, key=len)).decode())


def test_the_test_dag_is_published_from_the_controller(airflow, tmp_path):
    src = tmp_path / "dags"
    shutil.copytree(sitekit.PROJECT / "dags", src, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(DAG_FILE, src / DAG_FILE.name)
    result = sitekit.playbook("ansible/playbooks/publish-dags.yml", "-e", f"publish_dags_src={src}")
    assert result["rc"] == 0, "\n".join(result["failed"]) or result["output"][-3000:]
    # every task of the publish ran on the controller (delegate_to: localhost), none on the airflow host
    waited = sitekit.wait(lambda: DAG_ID in airflow.dag_ids(), timeout=240, step=3)
    assert waited is not None, f"{DAG_ID} not listed; Airflow lists {sorted(airflow.dag_ids())}"
    sitekit.report(f"task secrets: test DAG published from the controller and listed in {waited:.0f} s")


def test_a_task_sees_no_platform_secret_in_its_environment(airflow):
    run_id = airflow.trigger(DAG_ID)
    state, seconds = airflow.wait_run(DAG_ID, run_id, timeout=600)
    assert state == "success", f"{DAG_ID} run {run_id} ended {state}: {airflow.failed_tasks(DAG_ID, run_id)}"
    secrets = _secrets()
    pipelines_password = secrets[OWN]
    for task_id in TASKS:
        resp = airflow.request(
            "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        )
        assert resp.status_code == 200, resp.text[:500]
        seen = _decoded(resp.json()["value"])
        environ = seen["environ"]
        STATE[task_id] = seen
        text = json.dumps(environ)
        found = sorted(name for name, value in secrets.items() if name != OWN and value in text)
        assert not found, f"{task_id}: the task's environment holds {found} (variables: {sorted(environ)})"
        # none of Airflow's own secret settings, whatever their value
        settings = [k for k in environ if re.match(r"AIRFLOW__(DATABASE|CORE|API|API_AUTH)__", k)]
        assert all(environ[k] == "airflow-db-not-allowed:///" for k in settings), {k: "..." for k in settings}
        # ... and what the tasks need: their MLflow client settings, as mlflow-pipelines
        assert environ.get("MLFLOW_TRACKING_USERNAME") == "mlflow-pipelines", sorted(environ)
        assert environ.get("MLFLOW_TRACKING_PASSWORD") == pipelines_password, "the task lacks its MLflow password"
        sitekit.report(
            f"task secrets: {task_id}: {len(environ)} variables, none of {len(secrets) - 1} platform secrets"
        )
    sitekit.report(f"task secrets: {DAG_ID} trigger -> success {seconds:.0f} s")


def test_the_task_logs_hold_no_platform_secret():
    secrets = _secrets()
    logs = sitekit.out(AIRFLOW, f"cat /var/lib/airflow/logs/dag_id={DAG_ID}/*/task_id=*/attempt=*.log", timeout=60)
    assert logs, "no task log"
    found = sorted(name for name, value in secrets.items() if name != OWN and value in logs)
    assert not found, f"the task logs hold {found}"


def test_a_task_cannot_read_the_dag_sync_key():
    """dag-sync.env (the bucket's read-only key) is root's: systemd reads it for the sync's unit."""
    readable = STATE["in_process"]["readable"]
    assert readable["/etc/airflow/dag-sync.env"] is False, readable
    # What a task can still read, as the services' own user (docs/airflow.md, "What DAG authors can reach").
    sitekit.report(f"task secrets: files a task (user airflow) can open: {readable}")


def _host_rclone(verb: str, *args: str, endpoint: str | None = None):
    """rclone on the airflow host with the DAG sync's own credentials (dag-sync.env, as root)."""
    override = f"RCLONE_CONFIG_DAGS_ENDPOINT={endpoint} " if endpoint else ""
    cmd = (
        "set -a && . /etc/airflow/dag-sync.env && set +a && "
        f"{override}/opt/airflow/rclone/bin/rclone {verb} {' '.join(args)} "
        "--retries 1 --low-level-retries 1 --contimeout 10s --timeout 30s"
    )
    return sitekit.sh(AIRFLOW, cmd, timeout=120)


def _bucket_files() -> set:
    return set(sitekit.out(DB, f"ls /var/lib/object-store/{BUCKET}").split())


def test_the_airflow_host_cannot_write_the_dag_bucket():
    before = _bucket_files()
    assert f"{DAG_ID}.py" in before and "iris_training.py" in before, before
    sitekit.out(AIRFLOW, f"printf 'x = 1  # airflow dag\\n' > /tmp/{PROBE}")
    # its read-only endpoint reads ...
    listing = _host_rclone("lsf", f"dags:{BUCKET}")
    assert listing.returncode == 0 and "iris_training.py" in listing.stdout, listing.stderr[-1500:]
    # ... and refuses every write and delete
    refused = {
        "upload": _host_rclone("copyto", f"/tmp/{PROBE}", f"dags:{BUCKET}/{PROBE}"),
        "overwrite": _host_rclone("copyto", f"/tmp/{PROBE}", f"dags:{BUCKET}/iris_training.py"),
        "delete": _host_rclone("deletefile", f"dags:{BUCKET}/iris_training.py"),
    }
    # the same key at the read-write endpoint is no key there
    topology = sitekit.PROJECT / "ansible/roles/platform_defaults/defaults/main/topology.yml"
    port = yaml.safe_load(topology.read_text())["oci_mlops_topology"]["services"]["objectstore"]["port"]
    refused["upload at the read-write endpoint"] = _host_rclone(
        "copyto", f"/tmp/{PROBE}", f"dags:{BUCKET}/{PROBE}", endpoint=f"http://{sitekit.ip(DB)}:{port}"
    )
    for what, run in refused.items():
        assert run.returncode != 0, f"{what} with the airflow host's key was not refused: {run.stdout} {run.stderr}"
    assert _bucket_files() == before, "the bucket changed"
    assert (
        sitekit.out(DB, f"cat /var/lib/object-store/{BUCKET}/iris_training.py")
        == sitekit.PROJECT.joinpath("dags/iris_training.py").read_text().strip()
    )
    errors = {what: (run.stderr.strip().splitlines() or ["?"])[-1][-160:] for what, run in refused.items()}
    sitekit.report(f"task secrets: writes with the airflow host's DAG key refused: {errors}")


def test_publishing_dags_again_removes_the_test_dag(airflow):
    result = sitekit.playbook("ansible/playbooks/publish-dags.yml")
    assert result["rc"] == 0, "\n".join(result["failed"]) or result["output"][-3000:]
    assert f"{DAG_ID}.py" not in _bucket_files()
    assert sitekit.wait(lambda: DAG_ID not in airflow.dag_ids(), timeout=240, step=3) is not None
