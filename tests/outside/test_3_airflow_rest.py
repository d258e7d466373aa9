"""Airflow's REST API v2 as a user drives it: token, list, unpause, trigger, poll, task logs.

Runs after the quickstart, which published dags/ and ran iris_training; this
suite runs the batch pipeline, which scores with the champion it registered.
"""

from __future__ import annotations

import time

import pytest
import requests
from conftest import report, wait_for

DAG = "iris_batch_inference"
RUN_TIMEOUT = 600


class Airflow:
    def __init__(self, env):
        self.url = env["AIRFLOW_URL"]
        self.credentials = {"username": env["AIRFLOW_USERNAME"], "password": env["AIRFLOW_PASSWORD"]}
        # The lab CA, per request: REQUESTS_CA_BUNDLE (this machine's) would override Session.verify.
        self.verify = env["OCI_MLOPS_CA_BUNDLE"]
        self.session = requests.Session()
        token = requests.post(f"{self.url}/auth/token", json=self.credentials, timeout=30, verify=self.verify)
        assert token.status_code == 201, f"POST /auth/token: {token.status_code} {token.text[:300]}"
        self.session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def get(self, path, **params):
        resp = self.session.get(f"{self.url}{path}", params=params, timeout=30, verify=self.verify)
        assert resp.status_code == 200, f"GET {path}: {resp.status_code} {resp.text[:300]}"
        return resp.json()


@pytest.fixture(scope="module")
def airflow(user_env):
    return Airflow(user_env)


def test_the_api_refuses_anonymous_calls(user_env):
    resp = requests.get(f"{user_env['AIRFLOW_URL']}/api/v2/dags", timeout=30, verify=user_env["OCI_MLOPS_CA_BUNDLE"])
    assert resp.status_code == 401


def test_a_wrong_password_gets_no_token(user_env):
    resp = requests.post(
        f"{user_env['AIRFLOW_URL']}/auth/token",
        timeout=30,
        verify=user_env["OCI_MLOPS_CA_BUNDLE"],
        json={"username": user_env["AIRFLOW_USERNAME"], "password": "not-the-password"},
    )
    assert resp.status_code in (401, 403), resp.status_code


def test_health_reports_every_component_healthy(user_env):
    health = requests.get(
        f"{user_env['AIRFLOW_URL']}/api/v2/monitor/health", timeout=30, verify=user_env["OCI_MLOPS_CA_BUNDLE"]
    ).json()
    unhealthy = {name: part.get("status") for name, part in health.items() if part.get("status") != "healthy"}
    assert not unhealthy, health


def test_the_pipelines_are_listed_without_import_errors(airflow):
    dag_ids = {d["dag_id"] for d in airflow.get("/api/v2/dags", limit=100)["dags"]}
    assert {"iris_training", DAG} <= dag_ids, sorted(dag_ids)
    assert airflow.get("/api/v2/importErrors")["import_errors"] == []


def test_trigger_poll_and_read_the_task_logs(airflow):
    resp = airflow.session.patch(
        f"{airflow.url}/api/v2/dags/{DAG}", json={"is_paused": False}, timeout=30, verify=airflow.verify
    )
    assert resp.status_code == 200 and resp.json()["is_paused"] is False, resp.text[:300]
    start = time.monotonic()
    resp = airflow.session.post(
        f"{airflow.url}/api/v2/dags/{DAG}/dagRuns", json={"logical_date": None}, timeout=30, verify=airflow.verify
    )
    assert resp.status_code == 200, resp.text[:300]
    run_id = resp.json()["dag_run_id"]
    state = {}

    def finished():
        state["value"] = airflow.get(f"/api/v2/dags/{DAG}/dagRuns/{run_id}")["state"]
        return state["value"] in ("success", "failed")

    waited = wait_for(finished, RUN_TIMEOUT, step=3)
    assert waited is not None, f"{DAG} run {run_id} still {state.get('value')} after {RUN_TIMEOUT} s"
    tasks = airflow.get(f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances")["task_instances"]
    states = {t["task_id"]: t["state"] for t in tasks}
    assert state["value"] == "success", states
    report(f"Airflow REST: {DAG} trigger -> success in {time.monotonic() - start:.0f} s; tasks {states}")
    for task in tasks:
        logs = airflow.get(
            f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/{task['task_id']}/logs/{task['try_number']}",
            full_content="true",
        )
        events = [e for e in logs.get("content") or [] if isinstance(e, dict)]
        own = [e for e in events if e.get("task_id") == task["task_id"] and e.get("run_id") == run_id]
        assert own, f"{task['task_id']}: the log has no event of this task and run: {str(logs)[:500]}"
