"""Housekeeping timers (issue 17, item 4): what is older than its retention goes, the rest stays.

For each job the suite creates things on both sides of the retention, backdated where they live
(the databases on the db host as MySQL's root, files with touched mtimes), starts the job's
service once (`systemctl start <job>.service`: a oneshot, so it returns when the job is done),
and checks that the old things are gone and the recent ones intact:

- airflow-db-clean: a manual DAG run and an audit-log row started 200 days ago are deleted, the
  same one day old stay, an `_airflow_deleted__*` archive table left behind is dropped, and the
  clean leaves no archive table of its own;
- airflow-log-clean: task log files 40 days old are deleted, a one-day-old one stays, an empty
  directory left by an earlier run goes;
- mlflow-gc: a run deleted 40 days ago and an experiment deleted 40 days ago (with its run) are
  deleted with their artifacts in the object store; a run deleted now stays (deleted, restorable),
  a live run stays with its artifacts, and the champion is still served;
- oci-mlops-api-downloads-clean: the download directory of an API process that is gone is
  deleted, those of the running workers (backdated too: their lock protects them) stay and the
  API keeps serving.

Each timer is enabled and scheduled, with a randomized delay, and every job runs as its service's
own user. The disk each service's housekeeping bounds is reported before and after.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid

import requests
import sitekit
from sitekit import AIRFLOW, API, DB, MLFLOW

TOKEN = uuid.uuid4().hex[:10]
DAY_MS = 86400 * 1000
BUCKET_DIR = "/var/lib/object-store/mlflow-artifacts"  # inventory/lab: oci_mlops_artifacts_bucket
LOGS = "/var/lib/airflow/logs"
DOWNLOADS = "/var/cache/oci-mlops-api"
ROW = [[5.1, 3.5, 1.4, 0.2]]

# job unit -> (host, the user it must run as)
JOBS = {
    "airflow-db-clean": (AIRFLOW, "airflow"),
    "airflow-log-clean": (AIRFLOW, "airflow"),
    "mlflow-gc": (MLFLOW, "mlflow"),
    "oci-mlops-api-downloads-clean": (API, "model-api"),
}


def _sql(database: str, statement: str) -> str:
    """A statement as MySQL's root on the db host (socket), in UTC; tab-separated rows."""
    cmd = f"mysql -NB {database} <<'SQL'\nSET time_zone = '+00:00';\n{statement}\nSQL"
    return sitekit.out(DB, cmd)


def _run_job(unit: str) -> float:
    """Start the job's service once; its run must succeed. Returns its wall time (s)."""
    host, _user = JOBS[unit]
    start = time.monotonic()
    run = sitekit.sh(host, f"systemctl start {unit}.service", timeout=1800)
    seconds = time.monotonic() - start
    result = sitekit.out(host, f"systemctl show -p Result --value {unit}.service")
    journal = sitekit.sh(host, f"journalctl -u {unit}.service -n 60 --no-pager").stdout
    assert run.returncode == 0 and result == "success", f"{unit}: rc {run.returncode}, {result}\n{journal[-4000:]}"
    sitekit.report(f"housekeeping {unit}.service run once: {seconds:.1f} s")
    return seconds


def _du(host: str, path: str) -> int:
    return int(sitekit.out(host, f"du -sb {path} 2>/dev/null | cut -f1 || echo 0") or 0)


def _predict() -> requests.Response:
    """The champion through the edge, with the clients' key."""
    return requests.post(
        f"{sitekit.EDGE_URL}/api/predict/{sitekit.MODEL}/{sitekit.ALIAS}",
        json={"data": ROW},
        headers={"X-API-Key": sitekit.api_key()},
        timeout=120,
        verify=sitekit.CA,
    )


def test_timers_are_scheduled_and_jobs_run_as_the_services_users():
    for unit, (host, user) in JOBS.items():
        assert sitekit.active(host, f"{unit}.timer"), f"{unit}.timer is not active on {host}"
        assert sitekit.out(host, f"systemctl is-enabled {unit}.timer") == "enabled"
        assert sitekit.out(host, f"systemctl show -p User --value {unit}.service") == user
        assert sitekit.out(host, f"systemctl show -p Type --value {unit}.service") == "oneshot"
        delay = sitekit.out(host, f"systemctl show -p RandomizedDelayUSec --value {unit}.timer")
        assert delay not in ("", "0"), f"{unit}.timer has no randomized delay"
        assert sitekit.out(host, f"systemctl show -p NextElapseUSecRealtime --value {unit}.timer"), (
            f"{unit}: not scheduled"
        )
        # the baseline hardening of every service (systemd-analyze security: exposure below 5)
        exposure = sitekit.out(host, f"systemd-analyze security {unit}.service --no-pager | tail -1")
        score = re.search(r"exposure level for \S+: ([0-9.]+)", exposure)
        assert score and float(score.group(1)) < 5, f"{unit}: {exposure}"


# ------------------------------------------------------------------------------ Airflow


def _dag_paused(airflow, dag_id: str) -> bool:
    resp = airflow.request("GET", f"/api/v2/dags/{dag_id}")
    assert resp.status_code == 200, resp.text
    return bool(resp.json()["is_paused"])


def _set_paused(airflow, dag_id: str, paused: bool) -> None:
    resp = airflow.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": paused})
    assert resp.status_code == 200, resp.text


def _dag_run_ids(dag_id: str) -> set[str]:
    rows = _sql("airflow", f"SELECT run_id FROM dag_run WHERE dag_id = '{dag_id}';")
    return set(rows.split("\n")) - {""}


def test_airflow_db_clean_deletes_old_rows_and_archive_tables(airflow):
    dag = sitekit.BATCH_DAG
    old_run, new_run = f"hk-old-{TOKEN}", f"hk-new-{TOKEN}"
    was_paused = _dag_paused(airflow, dag)
    # Paused, the manual runs stay queued: no task of theirs runs. Their dates are then set in
    # the database as if they had run 200 days and one day ago.
    _set_paused(airflow, dag, True)
    try:
        for run_id in (old_run, new_run):
            resp = airflow.request(
                "POST", f"/api/v2/dags/{dag}/dagRuns", json={"dag_run_id": run_id, "logical_date": None, "conf": {}}
            )
            assert resp.status_code == 200, resp.text
        for run_id, days in ((old_run, 200), (new_run, 1)):
            _sql(
                "airflow",
                f"UPDATE dag_run SET state = 'success', queued_at = UTC_TIMESTAMP() - INTERVAL {days} DAY, "
                f"start_date = UTC_TIMESTAMP() - INTERVAL {days} DAY, "
                f"end_date = UTC_TIMESTAMP() - INTERVAL {days} DAY + INTERVAL 1 MINUTE "
                f"WHERE dag_id = '{dag}' AND run_id = '{run_id}';",
            )
    finally:
        _set_paused(airflow, dag, was_paused)
    # the audit log (Airflow's fastest growing table), and an archive table a clean without
    # --skip-archive (or an interrupted one) would leave
    archive = f"_airflow_deleted__log__20200101000000_{TOKEN}"
    _sql(
        "airflow",
        f"INSERT INTO log (dttm, event, extra) VALUES (UTC_TIMESTAMP() - INTERVAL 200 DAY, 'hk-old-{TOKEN}', ''), "
        f"(UTC_TIMESTAMP() - INTERVAL 1 DAY, 'hk-new-{TOKEN}', '');\n"
        f"CREATE TABLE `{archive}` LIKE log;",
    )
    runs_before = _dag_run_ids(dag)
    assert {old_run, new_run} <= runs_before
    size_before = _sql(
        "information_schema", "SELECT SUM(data_length + index_length) FROM tables WHERE table_schema = 'airflow';"
    )

    _run_job("airflow-db-clean")

    runs_after = _dag_run_ids(dag)
    assert old_run not in runs_after, "the DAG run 200 days old is still there"
    # (the scheduler may have added a scheduled run meanwhile)
    assert runs_before - {old_run} <= runs_after, f"other runs went too: {sorted(runs_before - runs_after - {old_run})}"
    events = _sql("airflow", f"SELECT event FROM log WHERE event LIKE 'hk-%-{TOKEN}';").split("\n")
    assert events == [f"hk-new-{TOKEN}"], events
    archives = _sql(
        "information_schema",
        "SELECT table_name FROM tables WHERE table_schema = 'airflow'"
        " AND table_name LIKE '\\_airflow\\_deleted\\_\\_%';",
    )
    assert archives == "", f"archive tables left: {archives}"
    size_after = _sql(
        "information_schema", "SELECT SUM(data_length + index_length) FROM tables WHERE table_schema = 'airflow';"
    )
    sitekit.report(f"housekeeping airflow metadata schema: {size_before} -> {size_after} bytes")


def test_airflow_log_clean_deletes_old_log_files():
    base = f"{LOGS}/dag_id=hk_{TOKEN}"
    old, new, emptied = f"{base}/run_id=old/task_id=t", f"{base}/run_id=new/task_id=t", f"{base}/run_id=gone/task_id=t"
    sitekit.out(
        AIRFLOW,
        f"mkdir -p {old} {new} {emptied} && echo old > {old}/attempt=1.log && echo new > {new}/attempt=1.log"
        f" && chown -R airflow:airflow {base}"
        f" && touch -d '40 days ago' {old}/attempt=1.log && touch -d '1 day ago' {new}/attempt=1.log"
        f" && touch -d '2 days ago' {emptied}",
    )
    before = _du(AIRFLOW, LOGS)

    _run_job("airflow-log-clean")

    assert sitekit.sh(AIRFLOW, f"test -e {old}/attempt=1.log").returncode != 0, "a log file 40 days old stayed"
    assert sitekit.out(AIRFLOW, f"cat {new}/attempt=1.log") == "new"
    assert sitekit.sh(AIRFLOW, f"test -e {emptied}").returncode != 0, "an empty directory of an earlier run stayed"
    # the logs of the platform's own recent DAG runs (end-to-end suite) stay
    assert sitekit.out(AIRFLOW, f"find {LOGS} -path '*dag_id={sitekit.TRAINING_DAG}*' -name '*.log' | head -1")
    sitekit.report(f"housekeeping airflow logs folder: {before} -> {_du(AIRFLOW, LOGS)} bytes")
    sitekit.sh(AIRFLOW, f"rm -rf {base}")


# ------------------------------------------------------------------------------ MLflow

# Run on the mlflow host with MLflow's own virtualenv, as the MLflow admin (request on stdin: the
# password never on a command line): an experiment with three runs, each with an artifact (one
# deleted now, one to be backdated, one live), and an experiment with one run, deleted.
CREATE = r"""
import json, os, sys
req = json.load(sys.stdin)
os.environ.update(MLFLOW_TRACKING_URI=req["uri"], MLFLOW_TRACKING_USERNAME="admin",
                  MLFLOW_TRACKING_PASSWORD=req["password"], MLFLOW_DISABLE_TELEMETRY="true",
                  MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD="false", MLFLOW_HTTP_REQUEST_MAX_RETRIES="1")
import mlflow
client = mlflow.MlflowClient()
out = {}
for exp_key, runs in (("kept_exp", ["old", "recent", "live"]), ("gone_exp", ["in_gone"])):
    exp_id = client.create_experiment("%s-%s" % (exp_key, req["token"]))
    out[exp_key] = exp_id
    for name in runs:
        run = client.create_run(exp_id, run_name=name)
        client.log_text(run.info.run_id, "housekeeping %s" % name, "note.txt")
        client.set_terminated(run.info.run_id)
        out[name] = run.info.run_id
client.delete_run(out["old"])
client.delete_run(out["recent"])
client.delete_experiment(out["gone_exp"])
print(json.dumps(out))
"""


# Afterwards: the suite's remaining experiment is deleted (it stays restorable until collected).
CLEAN_UP = r"""
import json, os, sys
req = json.load(sys.stdin)
os.environ.update(MLFLOW_TRACKING_URI=req["uri"], MLFLOW_TRACKING_USERNAME="admin",
                  MLFLOW_TRACKING_PASSWORD=req["password"], MLFLOW_DISABLE_TELEMETRY="true")
import mlflow
mlflow.MlflowClient().delete_experiment(req["experiment_id"])
"""


def _as_admin(script: str, request: dict) -> str:
    """SCRIPT with the mlflow host's MLflow, REQUEST (with the admin password) on stdin; its stdout."""
    run = subprocess.run(
        ["docker", "exec", "-i", MLFLOW, "/opt/mlflow/venv/bin/python", "-c", script],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, f"MLflow client on {MLFLOW} failed: {run.stderr[-3000:]}"
    return run.stdout


def _artifact_files(exp_id: str, run_id: str) -> int:
    return int(sitekit.out(DB, f"find {BUCKET_DIR}/{exp_id}/{run_id} -type f 2>/dev/null | wc -l"))


def _mlflow_rows(table: str, column: str, ids: list[str]) -> set[str]:
    listed = ", ".join(f"'{i}'" for i in ids)
    rows = _sql("mlflow", f"SELECT {column} FROM {table} WHERE {column} IN ({listed});")
    return set(rows.split("\n")) - {""}


def test_mlflow_gc_deletes_old_deleted_runs_and_experiments_with_their_artifacts():
    request = {
        "uri": f"http://{sitekit.ip(MLFLOW)}:5000",
        "password": sitekit.secret("mlflow_admin_password"),
        "token": TOKEN,
    }
    ids = json.loads(_as_admin(CREATE, request).strip().splitlines()[-1])
    kept, gone = ids["kept_exp"], ids["gone_exp"]
    placed = {name: (kept, ids[name]) for name in ("old", "recent", "live")} | {"in_gone": (gone, ids["in_gone"])}
    for name, (exp_id, run_id) in placed.items():
        assert _artifact_files(exp_id, run_id) == 1, f"run {name}: its artifact is not in the object store"
    # Deleted 40 days ago: the run, and the experiment with its run (deleting an experiment marks
    # its runs deleted at the same time).
    past = int(time.time() * 1000) - 40 * DAY_MS
    _sql(
        "mlflow",
        f"UPDATE runs SET deleted_time = {past} WHERE run_uuid IN ('{ids['old']}', '{ids['in_gone']}');\n"
        f"UPDATE experiments SET last_update_time = {past} WHERE experiment_id = {gone};",
    )
    before = _du(DB, BUCKET_DIR)

    _run_job("mlflow-gc")

    run_ids = [ids[n] for n in placed]
    assert _mlflow_rows("runs", "run_uuid", run_ids) == {ids["recent"], ids["live"]}
    assert _mlflow_rows("experiments", "experiment_id", [kept, gone]) == {kept}
    stages = _sql("mlflow", f"SELECT run_uuid, lifecycle_stage FROM runs WHERE experiment_id = {kept};")
    assert sorted(stages.split("\n")) == sorted([f"{ids['recent']}\tdeleted", f"{ids['live']}\tactive"])
    assert _artifact_files(kept, ids["old"]) == 0, "the old deleted run's artifacts stayed in the bucket"
    assert _artifact_files(gone, ids["in_gone"]) == 0, "the deleted experiment's artifacts stayed in the bucket"
    assert _artifact_files(kept, ids["recent"]) == 1, "a run deleted now lost its artifacts"
    assert _artifact_files(kept, ids["live"]) == 1, "a live run lost its artifacts"
    sitekit.report(f"housekeeping artifact bucket: {before} -> {_du(DB, BUCKET_DIR)} bytes")
    # the registry's champion is untouched and served
    resp = _predict()
    assert resp.status_code == 200, resp.text
    _as_admin(CLEAN_UP, {**request, "experiment_id": kept})


# ------------------------------------------------------------------------------ serving API


def _download_dirs() -> set[str]:
    return set(sitekit.out(API, f"ls -1 {DOWNLOADS}").split()) - {""}


def _held_dirs() -> set[str]:
    """The download directories whose lock a running process holds (`flock -n` cannot take it).

    Only directories that have a lock file are tried: flock(1) would create a missing one as root,
    which the sweep (as model-api) could then not open.
    """
    listing = sitekit.out(
        API,
        f"cd {DOWNLOADS} && for d in oci-mlops-models-*; do"
        ' [ -f "$d/.owner.lock" ] || continue;'
        ' flock -n -x "$d/.owner.lock" true 2>/dev/null || echo "$d"; done',
    )
    return set(listing.split()) - {""}


def test_api_downloads_of_processes_that_are_gone_are_deleted():
    # the champion loaded: the workers' own directories exist (and hold the model)
    for _ in range(6):  # reach every worker (the kernel spreads connections)
        resp = _predict()
        assert resp.status_code == 200, resp.text
    live = _download_dirs()
    assert live, f"no download directory under {DOWNLOADS}: the API downloads elsewhere"
    # The running workers' directories (locked); any other one is of a process that ended
    # without removing it (killed, crashed) and is the sweep's to delete too.
    held = _held_dirs()
    assert held, f"no locked download directory under {DOWNLOADS}: {sorted(live)}"
    stale = f"oci-mlops-models-hkstale{TOKEN}"
    sitekit.out(
        API,
        f"mkdir -p {DOWNLOADS}/{stale}/1-x/model"
        f" && head -c 1048576 /dev/urandom > {DOWNLOADS}/{stale}/1-x/model/model.pkl"
        f" && touch {DOWNLOADS}/{stale}/.owner.lock && chown -R model-api:model-api {DOWNLOADS}/{stale}"
        # old enough for the sweep; the live ones too: only their locks keep them
        f" && touch -d '2 hours ago' {DOWNLOADS}/oci-mlops-models-*",
    )
    before = _du(API, DOWNLOADS)

    _run_job("oci-mlops-api-downloads-clean")

    after = _download_dirs()
    assert stale not in after, "the directory of a process that is gone stayed"
    assert held <= after, f"directories of running workers went: {sorted(held - after)}"
    assert after <= held, f"directories of processes that are gone stayed: {sorted(after - held)}"
    resp = _predict()
    assert resp.status_code == 200, resp.text
    sitekit.report(f"housekeeping API downloads: {before} -> {_du(API, DOWNLOADS)} bytes")
