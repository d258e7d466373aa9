"""The restore drill (issue #17): back up, destroy both schemas, restore, and find everything again.

After the end-to-end suite (trained models, DAG runs) and housekeeping, before the drift suite:

1. The backup timer is active on the db host (the schemas host), its unit runs
   as its own non-root user with the platform's hardening.
2. A user creates state with the clients users have: MLflow's Python client
   (the outside-in suite's virtualenv, client.env's data-scientist) logs an
   experiment with runs (params, metric histories, tags), registers a model
   with two versions and sets an alias; the Airflow REST API (admin) creates a
   connection with a password and an extra (stored encrypted with the Fernet
   key). The iris-classifier champion, the training DAG's run history and the
   serving API's answer for the champion are recorded too.
3. `ansible/playbooks/backup.yml` (`make backup`) runs one backup and prints
   its id; the bucket holds it complete, its checksums verify, no secret of
   the controller appears in clear in any of its files, and its secrets
   bundle decrypts with the lab's age identity to the controller's values.
4. A wrong id makes `restore.yml` fail with a clear message before anything
   is stopped (one id: each try is a run of restore.yml's first play on every
   host; the script's answers to malformed, path-like and damaged ids are
   tests/unit/test_backup.py's).
5. Both schemas are dropped on the db host (MLflow then fails to read).
6. `restore.yml -e backup_restore_id=<id>` (`make restore BACKUP=<id>`) runs:
   its wall time is the RTO. The RPO is the timer's interval.
7. Everything of step 2 is back, read through the same clients: the same
   experiment, runs, metric histories, model versions and alias, the users
   (data-scientist signs in), the connection readable (its extra decrypted,
   its password present), the DAG runs, the champion, and the serving API's
   answer.

Cannot run without the lab (Docker): written for `make site-test`.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests
import sitekit
import yaml
from sitekit import ALIAS, DB, MLFLOW, MODEL, TRAINING_DAG

STATE: dict[str, Any] = {}
ROW = [[5.1, 3.5, 1.4, 0.2]]
DRILL = f"restore-drill-{uuid.uuid4().hex[:8]}"
CONNECTION = f"restore_drill_{uuid.uuid4().hex[:8]}"  # its own id per run (molecule verify again)
OUTSIDE_PYTHON = sitekit.PROJECT / ".cache" / "outside-test" / "venv" / "bin" / "python"
CLIENT_ENV = Path(sitekit.INVENTORY).parent / ".secrets" / "client.env"
AGE_IDENTITY = Path(sitekit.INVENTORY).parent / ".backup-age-identity"
BACKUP_SCRIPT = "/usr/local/sbin/oci-mlops-backup"

# MLflow's stock client as a user runs it: creates the drill's state (mode
# "create") or reads it back (mode "read"), printing one JSON snapshot.
MLFLOW_CLIENT = r"""
import json, sys
from mlflow import MlflowClient

mode, name = sys.argv[1], sys.argv[2]
client = MlflowClient()
if mode == "create":
    experiment_id = client.create_experiment(name, tags={"drill": name})
    for i in range(3):
        run = client.create_run(experiment_id, tags={"i": str(i)}, run_name=f"{name}-{i}")
        client.log_param(run.info.run_id, "alpha", str(0.1 * (i + 1)))
        for step in range(5):
            client.log_metric(run.info.run_id, "loss", 1.0 / (step + 1 + i), step=step)
        client.set_terminated(run.info.run_id)
    runs = client.search_runs([experiment_id], order_by=["attributes.run_name"])
    client.create_registered_model(name, description="restore drill")
    for run in runs[:2]:
        client.create_model_version(name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    client.set_registered_model_alias(name, "champion", "2")

experiment = client.get_experiment_by_name(name)
runs = client.search_runs([experiment.experiment_id], order_by=["attributes.run_name"])
snapshot = {
    "experiment": [experiment.experiment_id, experiment.name, experiment.tags.get("drill")],
    "runs": [
        {
            "id": r.info.run_id,
            "name": r.info.run_name,
            "status": r.info.status,
            "params": r.data.params,
            "tags": {k: v for k, v in r.data.tags.items() if not k.startswith("mlflow.")},
            "loss": [(m.step, m.value) for m in client.get_metric_history(r.info.run_id, "loss")],
        }
        for r in runs
    ],
    "versions": sorted(
        (v.version, v.run_id, v.source) for v in client.search_model_versions(f"name='{name}'")
    ),
    "champion": client.get_model_version_by_alias(name, "champion").version,
}
print(json.dumps(snapshot, sort_keys=True))
"""


def _client_env() -> dict[str, str]:
    """A user's shell after `source client.env` (no MLflow/AWS settings of the control node leak in)."""
    assert CLIENT_ENV.is_file(), f"{CLIENT_ENV} is missing: site.yml writes it"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_", "AIRFLOW_"))}
    shell = subprocess.run(
        ["bash", "-c", 'set -euo pipefail; source "$1"; env -0', "bash", str(CLIENT_ENV)],
        env=base,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return dict(item.split("=", 1) for item in shell.stdout.split("\0") if "=" in item)


def _mlflow_client(mode: str) -> dict:
    assert OUTSIDE_PYTHON.is_file(), f"{OUTSIDE_PYTHON} is missing: the outside-in suite (test_1b) builds it"
    run = subprocess.run(
        [str(OUTSIDE_PYTHON), "-c", MLFLOW_CLIENT, mode, DRILL],
        env=_client_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, f"MLflow client ({mode}) failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return json.loads(run.stdout.strip().splitlines()[-1])


def _mlflow_admin(path: str, **params) -> requests.Response:
    return requests.get(
        f"{sitekit.EDGE_URL}/mlflow{path}",
        params=params,
        timeout=30,
        verify=sitekit.CA,
        auth=("admin", sitekit.secret("mlflow_admin_password")),
    )


def _champion() -> str:
    resp = _mlflow_admin("/api/2.0/mlflow/registered-models/alias", name=MODEL, alias=ALIAS)
    assert resp.status_code == 200, f"{MODEL}@{ALIAS}: {resp.status_code} {resp.text[:500]}"
    return resp.json()["model_version"]["version"]


def _predict() -> dict:
    resp = requests.post(
        f"{sitekit.EDGE_URL}/api/predict/{MODEL}/{ALIAS}",
        json={"data": ROW},
        headers={"X-API-Key": sitekit.api_key()},
        timeout=120,
        verify=sitekit.CA,
    )
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    return {"model_version": str(answer["model_version"]), "predictions": answer["predictions"]}


def _dag_runs(airflow) -> list:
    resp = airflow.request("GET", f"/api/v2/dags/{TRAINING_DAG}/dagRuns", params={"limit": 100})
    assert resp.status_code == 200, resp.text
    return sorted((r["dag_run_id"], r["state"]) for r in resp.json()["dag_runs"])


def _connection(airflow) -> dict:
    resp = airflow.request("GET", f"/api/v2/connections/{CONNECTION}")
    assert resp.status_code == 200, f"connection {CONNECTION}: {resp.status_code} {resp.text[:1000]}"
    return resp.json()


def _restore(backup_id: str) -> dict:
    return sitekit.playbook("ansible/playbooks/restore.yml", "-e", f"backup_restore_id={backup_id}", timeout=3600)


def test_the_backup_timer_is_active_and_hardened():
    assert sitekit.active(DB, "oci-mlops-backup.timer"), "the backup timer is not active on the db host"
    props = dict(
        line.split("=", 1)
        for line in sitekit.out(
            DB, "systemctl show -p User -p ProtectSystem -p NoNewPrivileges -p CapabilityBoundingSet oci-mlops-backup"
        ).splitlines()
    )
    assert props["User"] == "oci-mlops-backup" and props["ProtectSystem"] == "strict", props
    assert props["NoNewPrivileges"] == "yes" and props["CapabilityBoundingSet"] == "", props
    exposure = sitekit.out(DB, "systemd-analyze security --no-pager oci-mlops-backup.service | tail -n 1")
    STATE["on_calendar"] = sitekit.out(DB, "systemctl show -p TimersCalendar --value oci-mlops-backup.timer")
    sitekit.report(f"backup timer: {STATE['on_calendar']}; unit {exposure.strip()}")


def test_a_user_creates_state_with_the_clients(airflow):
    STATE["mlflow"] = _mlflow_client("create")
    assert len(STATE["mlflow"]["runs"]) == 3 and STATE["mlflow"]["champion"] == "2", STATE["mlflow"]
    marker = uuid.uuid4().hex
    resp = airflow.request(
        "POST",
        "/api/v2/connections",
        json={
            "connection_id": CONNECTION,
            "conn_type": "http",
            "host": "example.invalid",
            "login": "drill",
            "password": f"pw-{marker}",
            "extra": json.dumps({"drill_marker": marker}),
        },
    )
    assert resp.status_code == 201, resp.text
    STATE["marker"] = marker
    STATE["dag_runs"] = _dag_runs(airflow)
    assert STATE["dag_runs"], f"no {TRAINING_DAG} runs: the end-to-end suite trains first"
    STATE["champion"] = _champion()
    STATE["prediction"] = _predict()


def test_make_backup_runs_one_and_prints_its_id():
    assert "marker" in STATE
    result = sitekit.playbook("ansible/playbooks/backup.yml")
    assert result["rc"] == 0, "\n".join(result["failed"]) or result["output"][-3000:]
    ids = re.findall(r"BACKUP=([0-9]{8}T[0-9]{6}Z)", result["output"])
    assert ids, result["output"][-3000:]
    STATE["backup"] = ids[-1]
    listing = sitekit.out(DB, f"{BACKUP_SCRIPT} list")
    assert listing.splitlines()[0] == f"{STATE['backup']} complete", listing
    journal = sitekit.out(DB, "journalctl -u oci-mlops-backup.service -o cat --no-pager | grep '^backup ' | tail -n 1")
    sitekit.report(f"make backup: {result['seconds']:.0f} s; {journal}")


def _declared_secrets() -> dict[str, str]:
    """The scenario's controller-generated secrets, by their declared names."""
    declared = yaml.safe_load(
        (sitekit.PROJECT / "ansible/roles/platform_defaults/defaults/main/secrets.yml").read_text(encoding="utf-8")
    )["oci_mlops_secrets"]
    return {d["name"]: sitekit.secret(d["name"]) for d in declared if (sitekit.SECRETS_DIR / d["name"]).is_file()}


def test_the_backup_verifies_and_holds_no_secret_in_clear():
    backup_id = STATE["backup"]
    work = f"/root/drill-{backup_id}"
    try:
        sitekit.out(DB, f"rm -rf {work} && {BACKUP_SCRIPT} fetch {backup_id} {work}")
        # Its files, searched here on the control node (a secret never goes on a command line).
        archive = subprocess.run(
            ["docker", "exec", DB, "tar", "-C", work, "-cf", "-", "."], capture_output=True, timeout=120, check=True
        ).stdout
    finally:
        sitekit.sh(DB, f"rm -rf {work}")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        files = {
            Path(m.name).name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }
    assert sorted(files) == sorted(["mlflow.sql.gz", "airflow.sql.gz", "secrets.age", "manifest.json", "SHA256SUMS"])
    manifest = json.loads(files["manifest.json"])
    assert manifest["id"] == backup_id and set(manifest["databases"]) == {"mlflow", "airflow"}, manifest
    contents = b"".join(gzip.decompress(data) if name.endswith(".gz") else data for name, data in files.items())
    assert b"-- Dump completed" in contents
    secrets = _declared_secrets()
    assert len(secrets) >= 10, sorted(secrets)
    in_clear = [name for name, value in secrets.items() if value.encode() in contents]
    assert not in_clear, f"in clear in backup {backup_id}: {in_clear}"
    plain = subprocess.run(
        ["age", "--decrypt", "--identity", str(AGE_IDENTITY)],
        input=files["secrets.age"],
        capture_output=True,
        check=True,
    ).stdout
    backed_up = json.loads(plain)["secrets"]
    for name in ("airflow_fernet_secret", "airflow_jwt_secret", "mlflow_db_password", "mlflow_admin_password"):
        assert backed_up[name] == secrets[name], name
    sitekit.report(
        f"backup {backup_id}: "
        + ", ".join(f"{db} {manifest['databases'][db]['bytes']} bytes" for db in ("mlflow", "airflow"))
    )


def test_a_wrong_backup_id_fails_before_anything_stops():
    result = _restore("20000101T000000Z")
    assert result["rc"] != 0
    message = result["output"]
    assert "No such backup" in message and STATE["backup"] in message, message[-3000:]
    assert sitekit.active(MLFLOW, "mlflow"), "a refused restore stopped MLflow"
    assert sitekit.active(DB, "oci-mlops-backup.timer"), "a refused restore stopped the backup timer"


def test_destroy_both_schemas():
    sitekit.out(DB, "mysql -e 'DROP DATABASE mlflow; DROP DATABASE airflow'")
    assert sitekit.wait(lambda: not sitekit.mlflow_db_ok(), timeout=60), "MLflow still reads its data"
    STATE["destroyed"] = True


def test_make_restore_brings_it_back():
    assert STATE.get("destroyed")
    start = time.monotonic()
    result = _restore(STATE["backup"])
    rto = time.monotonic() - start
    assert result["rc"] == 0, "\n".join(result["failed"]) or result["output"][-5000:]
    STATE["rto"] = rto
    sitekit.report(
        f"restore drill: RTO (make restore, wall time: fetch, stop, restore both schemas, converge until healthy) "
        f"{rto:.0f} s; RPO (backup timer OnCalendar) {STATE.get('on_calendar', '?')}\n{sitekit.profile(result)}"
    )


def test_mlflow_has_the_same_experiment_runs_models_and_alias():
    assert "rto" in STATE
    assert _mlflow_client("read") == STATE["mlflow"]


def test_the_platform_serves_the_same_champion():
    assert "rto" in STATE
    assert _champion() == STATE["champion"]
    assert sitekit.wait(lambda: _predict() == STATE["prediction"], timeout=180), "the API serves another answer"


def test_airflow_has_the_runs_and_a_readable_encrypted_connection(airflow):
    assert "rto" in STATE
    # every run of the backup, in the same state (a scheduler may have added one since)
    after = dict(_dag_runs(airflow))
    assert {run_id: after.get(run_id) for run_id, _ in STATE["dag_runs"]} == dict(STATE["dag_runs"])
    connection = _connection(airflow)
    # Decrypted with the Fernet key (a wrong key is an error here), then redacted for the response.
    assert json.loads(connection["extra"]) == {"drill_marker": STATE["marker"]}, connection
    assert connection["password"], connection
    assert connection["login"] == "drill" and connection["host"] == "example.invalid", connection


def test_the_backup_timer_is_back():
    assert "rto" in STATE
    assert sitekit.active(DB, "oci-mlops-backup.timer")
    airflow_health = sitekit.airflow_health()
    assert airflow_health["metadatabase"]["status"] == "healthy", airflow_health
