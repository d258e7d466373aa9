"""Faults: systemd and the platform recover without Ansible; an interrupted converge is finished by the next run.

Runs last: it kills processes and restarts hosts. Every recovery time is
measured and written to the site report.
"""

import datetime
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sitekit
from sitekit import AIRFLOW, API, DB, HOSTS, MLFLOW

# kill -9 -> healthy again: the target every service is measured against
# and reported with (artifacts/site-report.txt). What the test holds the
# platform to is systemd's part: a new main process within RESPAWN_LIMIT
# (the units' RestartSec is 2 s; the 77 s of a unit whose stop waited for
# TimeoutStopSec fails it), healthy within RECOVERY_LIMIT. How long a service
# then takes to import and answer is the machine's: on CI's 2 cores shared by
# 15 jobs MLflow took 27.7-107.6 s and the api-server 22.8-39.3 s, on an idle
# lab 12.2 s and 22.8 s (docs/site-tests.md).
RECOVERY_TARGET = 30  # seconds, reported
RESPAWN_LIMIT = 30  # seconds, kill -9 -> a new main process (asserted)
RECOVERY_LIMIT = 120  # seconds, kill -9 -> healthy (asserted)
MLFLOW_VENV = "/opt/mlflow/venv"
SITE_PACKAGES = f"{MLFLOW_VENV}/lib/python3*/site-packages"


def _heartbeat_after(component, since):
    """The Airflow component reports healthy with a heartbeat newer than `since` (epoch seconds)."""

    def check():
        data = sitekit.airflow_health()[component]
        beat = data.get(f"latest_{component}_heartbeat")
        return data["status"] == "healthy" and beat and datetime.datetime.fromisoformat(beat).timestamp() > since

    return check


def _airflow_api_ok():
    # Through the edge: the api-server admits only the edge's address.
    url = f"{sitekit.EDGE_URL}/airflow/api/v2/monitor/health"
    return sitekit.requests.get(url, timeout=5, verify=sitekit.CA).status_code == 200


def _airflow_all_healthy(since=0.0):
    def check():
        data = sitekit.airflow_health()
        return data["metadatabase"]["status"] == "healthy" and all(
            _heartbeat_after(c, since)() for c in ("scheduler", "dag_processor", "triggerer")
        )

    return check


# (host, unit, health check factory taking the kill time). MySQL last: the
# Airflow components exit on a lost database connection and systemd restarts them.
SERVICES = [
    (DB, "object-store", lambda t: sitekit.object_store_ok),
    (MLFLOW, "mlflow", lambda t: sitekit.mlflow_db_ok),
    (AIRFLOW, "airflow-api-server", lambda t: _airflow_api_ok),
    (AIRFLOW, "airflow-scheduler", lambda t: _heartbeat_after("scheduler", t)),
    (AIRFLOW, "airflow-dag-processor", lambda t: _heartbeat_after("dag_processor", t)),
    (AIRFLOW, "airflow-triggerer", lambda t: _heartbeat_after("triggerer", t)),
    (API, "oci-mlops-api", lambda t: sitekit.api_ready),
    (API, "oci-mlops-dashboard", lambda t: sitekit.dashboard_ok),
    (DB, "mysql", lambda t: sitekit.mysql_ok),
]


def _everything_healthy(since=0.0):
    checks = {
        "mysql": sitekit.mysql_ok,
        "object-store": sitekit.object_store_ok,
        "mlflow": sitekit.mlflow_db_ok,
        "airflow": _airflow_all_healthy(since),
        "api": sitekit.api_ready,
        "dashboard": sitekit.dashboard_ok,
        "edge": sitekit.edge_ok,
    }
    return checks


def _wait_all(checks, timeout):
    """Seconds until each check first passed (None: never), checking them together."""
    start = time.monotonic()
    done: dict[str, float] = {}
    while time.monotonic() - start < timeout and len(done) < len(checks):
        for name, check in checks.items():
            if name not in done:
                try:
                    if check():
                        done[name] = time.monotonic() - start
                except Exception:  # noqa: BLE001 (a service still down answers in many ways)
                    pass
        time.sleep(1)
    return {name: done.get(name) for name in checks}


def _wait_booted(host, timeout=180):
    return sitekit.wait(
        lambda: (
            sitekit.sh(host, "systemctl is-system-running --wait", timeout=60).stdout.strip() in ("running", "degraded")
        ),
        timeout,
        step=2,
    )


@pytest.mark.parametrize(("host", "unit", "health"), SERVICES, ids=[s[1] for s in SERVICES])
def test_kill_9_main_process_recovers(host, unit, health):
    assert sitekit.wait(lambda: sitekit.active(host, unit) and health(0)(), 120) is not None, (
        f"{unit} unhealthy before the kill"
    )
    pid = sitekit.main_pid(host, unit)
    assert pid > 0, f"{unit} has no main process"
    restarts = int(sitekit.out(host, f"systemctl show -p NRestarts --value {unit}"))
    killed_at = time.time()
    sitekit.out(host, f"kill -9 {pid}")
    check = health(killed_at)
    respawned = sitekit.wait(lambda: sitekit.main_pid(host, unit) not in (0, pid), timeout=RECOVERY_LIMIT, step=0.2)
    # Healthy: a new main process answers its health check, as its clients
    # see it. systemd's "active" comes after ExecStartPost, which for the
    # api-server is the execution API's warm-up (5-20 s on loaded cores):
    # it is waited for and reported, but it is not what a client waits on.
    waited = sitekit.wait(
        lambda: sitekit.main_pid(host, unit) not in (0, pid) and check(),
        timeout=RECOVERY_LIMIT,
        step=0.5,
    )
    started = None
    if waited is not None:
        waited = time.time() - killed_at
        settled = sitekit.wait(lambda: sitekit.active(host, unit), timeout=120, step=0.5)
        started = None if settled is None else time.time() - killed_at
    sitekit.report(
        f"kill -9 {unit} (pid {pid}) on {host} -> new process: "
        + (f"{respawned:.1f} s" if respawned is not None else f"none within {RECOVERY_LIMIT} s")
        + ", healthy: "
        + (f"{waited:.1f} s" if waited is not None else f"not within {RECOVERY_LIMIT} s")
        + (f" (over the {RECOVERY_TARGET} s target)" if waited and waited > RECOVERY_TARGET else "")
        + (f", active (ExecStartPost done): {started:.1f} s" if started and started - waited > 1 else "")
    )
    assert respawned is not None and respawned <= RESPAWN_LIMIT, (
        f"{unit}: no new main process within {RESPAWN_LIMIT} s of the kill ({respawned})"
    )
    assert waited is not None, f"{unit} did not answer its health check within {RECOVERY_LIMIT} s"
    assert started is not None, f"{unit} answers but systemd did not report it active within 120 s more"
    assert int(sitekit.out(host, f"systemctl show -p NRestarts --value {unit}")) > restarts, "not restarted by systemd"


def test_dag_sync_is_a_timer_not_a_process():
    """airflow-dag-sync has no long-running process to kill: a oneshot started by a timer.

    A killed sync run is a failed oneshot (the DAGs stay on the last good
    release) and the next tick runs again; what must survive is the timer.
    """
    assert sitekit.out(AIRFLOW, "systemctl show -p Type --value airflow-dag-sync.service") == "oneshot"
    assert sitekit.active(AIRFLOW, "airflow-dag-sync.timer")
    sitekit.report("kill -9 airflow-dag-sync: skipped (timer-started oneshot, no main process between runs)")


def _edge_predict():
    return sitekit.requests.post(
        f"{sitekit.EDGE_URL}/api/predict/{sitekit.MODEL}/{sitekit.ALIAS}",
        json={"data": [[5.1, 3.5, 1.4, 0.2]]},
        headers={"X-API-Key": sitekit.api_key()},
        timeout=60,
        verify=sitekit.CA,
    )


def _edge_ready():
    return sitekit.requests.get(f"{sitekit.EDGE_URL}/api/ready", timeout=30, verify=sitekit.CA)


MLFLOW_OUTAGE_PREDICTIONS = 100


def _api_workers_that_loaded(version):
    """Pids of the API's workers that logged loading the champion `version` since the unit started
    (each uvicorn worker has its own model cache)."""
    since = sitekit.out(API, "systemctl show -p ActiveEnterTimestamp --value oci-mlops-api")
    pids = set()
    for line in sitekit.out(API, f"journalctl -u oci-mlops-api --since '{since}' -o cat", timeout=60).splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if (
            entry.get("message") == "model loaded"
            and entry.get("model") == sitekit.MODEL
            and str(entry.get("version")) == version
        ):
            pids.add(entry.get("pid"))
    return pids


def _cache_champion_in_every_worker(version, timeout=120):
    """Concurrent bursts of predictions until every worker has loaded the champion (one worker
    can win every accept of sequential requests on an idle host)."""
    workers = int(sitekit.role_defaults("model_api")["model_api_workers"])

    def cached():
        with ThreadPoolExecutor(max_workers=8) as pool:
            assert all(r.status_code == 200 for r in pool.map(lambda _: _edge_predict(), range(16)))
        return len(_api_workers_that_loaded(version)) >= workers

    return sitekit.wait(cached, timeout, step=0.5)


def test_mlflow_stopped_cached_champion_still_serves_and_api_stays_ready():
    """mlflow.service stopped: the API's cached champion answers every prediction through the
    edge, and /ready stays 200 with "degraded" (a load balancer keeps the backend); once
    MLflow is back, the API is plainly ready again. MLflow is started again whatever happens."""
    assert sitekit.wait(lambda: sitekit.mlflow_db_ok() and sitekit.api_ready(), 180) is not None, "unhealthy before"
    warm = _edge_predict()  # the API may have restarted since the champion was last loaded
    assert warm.status_code == 200, warm.text
    version = warm.json()["model_version"]
    assert _cache_champion_in_every_worker(version) is not None, "the champion is not cached in every API worker"
    try:
        sitekit.out(MLFLOW, "systemctl stop mlflow")
        assert not sitekit.active(MLFLOW, "mlflow")
        ready = _edge_ready()
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "degraded", ready.text
        assert any(r.startswith("MLflow ") for r in ready.json()["reasons"]), ready.text
        start = time.monotonic()
        answers = [_edge_predict() for _ in range(MLFLOW_OUTAGE_PREDICTIONS)]
        seconds = time.monotonic() - start
        codes = [a.status_code for a in answers]
        sitekit.report(
            f"mlflow.service stopped: {codes.count(200)}/{len(codes)} predictions 200 through the edge in "
            f"{seconds:.1f} s; /ready {ready.status_code} {ready.json()['status']}"
        )
        assert codes == [200] * MLFLOW_OUTAGE_PREDICTIONS, {a.status_code: a.text[:300] for a in answers}
        assert {a.json()["model_version"] for a in answers} == {version}
        # still so after alias refreshes have failed (model_api_alias_refresh_seconds, 10 s by default)
        time.sleep(12)
        ready = _edge_ready()
        assert ready.status_code == 200 and ready.json()["status"] == "degraded", ready.text
        assert _edge_predict().status_code == 200
    finally:
        sitekit.sh(MLFLOW, "systemctl start mlflow")
    started = time.monotonic()
    recovered = sitekit.wait(lambda: sitekit.mlflow_db_ok() and _edge_ready().json()["status"] == "ready", 180)
    sitekit.report(
        "mlflow.service started again -> API plainly ready: "
        + (f"{time.monotonic() - started:.1f} s" if recovered is not None else "NOT within 180 s")
    )
    assert recovered is not None, _edge_ready().text
    resp = _edge_predict()
    assert resp.status_code == 200, resp.text


def test_db_host_restart_recovers_without_ansible(airflow):
    assert sitekit.wait(lambda: all(c() for c in _everything_healthy().values()), 180) is not None, "unhealthy before"
    address = sitekit.ip(DB)
    start = time.time()
    subprocess.run(["docker", "restart", DB], check=True, capture_output=True, timeout=120)
    restarted = time.time() - start
    recovered = _wait_all(_everything_healthy(since=time.time()), timeout=300)
    sitekit.report(
        f"docker restart {DB}: {restarted:.0f} s (address {address} -> {sitekit.ip(DB)}); recovered after it: "
        + ", ".join(f"{k} {f'{v:.0f} s' if v is not None else 'NOT within 300 s'}" for k, v in recovered.items())
    )
    assert all(v is not None for v in recovered.values()), recovered
    assert sitekit.ip(DB) == address, "the db host changed address"
    resp = sitekit.requests.post(
        f"{sitekit.EDGE_URL}/api/predict/{sitekit.MODEL}/{sitekit.ALIAS}",
        json={"data": [[5.1, 3.5, 1.4, 0.2]]},
        headers={"X-API-Key": sitekit.api_key()},
        timeout=120,
        verify=sitekit.CA,
    )
    assert resp.status_code == 200, resp.text
    assert sitekit.TRAINING_DAG in airflow.dag_ids()


def test_whole_platform_restart_recovers_without_ansible():
    addresses = {h: sitekit.ip(h) for h in HOSTS}
    start = time.time()
    restarts = [
        subprocess.Popen(["docker", "restart", h], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for h in HOSTS
    ]
    assert all(p.wait(timeout=180) == 0 for p in restarts), [p.communicate()[1] for p in restarts]
    restarted = time.time() - start
    recovered = _wait_all(_everything_healthy(since=time.time()), timeout=420)
    total = time.time() - start
    moved = {h: f"{a} -> {sitekit.ip(h)}" for h, a in addresses.items() if sitekit.ip(h) != a}
    sitekit.report(
        f"docker restart of all {len(HOSTS)} hosts: {restarted:.0f} s; healthy after it: "
        + ", ".join(f"{k} {f'{v:.0f} s' if v is not None else 'NOT within 420 s'}" for k, v in recovered.items())
        + f"; total {total:.0f} s; addresses changed: {moved or 'none'}"
    )
    assert all(v is not None for v in recovered.values()), recovered
    # Like OCI instances, lab hosts keep their address (lab_containers fixes it):
    # services bind to it and peers know it from /etc/hosts.
    assert not moved, f"addresses changed on restart: {moved}"
    # The DAG sync timer came back too, and its first run after boot succeeded.
    assert (
        sitekit.wait(
            lambda: (
                sitekit.out(AIRFLOW, "systemctl show -p Result --value airflow-dag-sync.service") == "success"
                and int(
                    sitekit.out(
                        AIRFLOW, "systemctl show -p ExecMainExitTimestampMonotonic --value airflow-dag-sync.service"
                    )
                    or 0
                )
                > 0
            ),
            120,
        )
        is not None
    )


def test_interrupted_converge_is_finished_by_the_next_run():
    """Remove MLflow's virtualenv, converge the mlflow host and crash the host while pip installs.

    Then damage a package the crash left installed (what a power cut may leave:
    an empty module file). The next run must rebuild a working virtualenv:
    a half-installed or damaged one must not count as done.
    """
    sitekit.out(MLFLOW, f"rm -rf {MLFLOW_VENV}")
    converge = subprocess.Popen(
        ["ansible-playbook", "-i", sitekit.INVENTORY, "site.yml", "--limit", MLFLOW],
        cwd=sitekit.PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(
            sitekit.os.environ,
            ANSIBLE_CONFIG=str(sitekit.PROJECT / "ansible.cfg"),
            ANSIBLE_ROLES_PATH=str(sitekit.PROJECT / "ansible/roles"),
            ANSIBLE_COLLECTIONS_PATH=str(sitekit.PROJECT / ".ansible/collections"),
        ),
    )
    count = f"ls -d {SITE_PACKAGES}/*.dist-info 2>/dev/null | wc -l"
    installing = sitekit.wait(
        lambda: (
            sitekit.sh(MLFLOW, "pgrep -f 'pip.*install' >/dev/null").returncode == 0
            and int(sitekit.out(MLFLOW, count)) >= 30
        ),
        timeout=900,
        step=0.5,
    )
    subprocess.run(["docker", "kill", MLFLOW], check=True, capture_output=True)
    assert converge.wait(timeout=300) != 0, "the interrupted converge reported success"
    assert installing is not None, "pip never got to installing packages"
    subprocess.run(["docker", "start", MLFLOW], check=True, capture_output=True)
    assert _wait_booted(MLFLOW) is not None
    packages = int(sitekit.out(MLFLOW, count))
    has_mlflow = sitekit.sh(MLFLOW, f"ls -d {SITE_PACKAGES}/mlflow-*.dist-info").returncode == 0
    damaged = sitekit.out(
        MLFLOW,
        " ; ".join(
            f"f=$(ls {SITE_PACKAGES}/{module}/__init__.py 2>/dev/null | head -1);"
            f' [ -n "$f" ] && {{ : > "$f"; echo {module}; exit; }}'
            for module in ("mlflow", "flask", "sqlalchemy", "alembic", "click", "jinja2")
        )
        + " ; true",
    )
    works = sitekit.sh(MLFLOW, f"{MLFLOW_VENV}/bin/python -c 'import mlflow.server.auth'").returncode == 0
    sitekit.report(
        f"interrupted converge: crashed {MLFLOW} {installing:.0f} s into pip with {packages} packages installed "
        f"(mlflow itself {'in' if has_mlflow else 'not yet in'}); emptied {damaged or 'nothing'}/__init__.py; "
        f"venv works before the next run: {works}"
    )
    assert not works, "the virtualenv survived the crash intact: nothing to repair"
    result = sitekit.playbook("site.yml", "--limit", MLFLOW)
    sitekit.report(
        f"converge after the interruption ({MLFLOW} only): {result['seconds']:.0f} s,"
        f" changed={sitekit.changed_count(result)}"
    )
    assert result["rc"] == 0, "\n".join(result["failed"]) or result["output"][-3000:]
    version = sitekit.out(
        MLFLOW, f"{MLFLOW_VENV}/bin/python -c 'import mlflow.server.auth, pymysql, boto3; print(mlflow.__version__)'"
    )
    assert version == sitekit.role_defaults("mlflow")["mlflow_version"]
    assert sitekit.sh(MLFLOW, f"{MLFLOW_VENV}/bin/pip check --disable-pip-version-check").returncode == 0
    assert sitekit.wait(sitekit.mlflow_db_ok, 120) is not None
    assert sitekit.wait(sitekit.api_ready, 120) is not None
    again = sitekit.playbook("site.yml", "--limit", MLFLOW)
    sitekit.report(f"next converge ({MLFLOW} only): {again['seconds']:.0f} s, changed={sitekit.changed_count(again)}")
    assert again["rc"] == 0 and sitekit.changed_count(again) == 0, sorted(again["changed"])
