"""Start the site report with the converge times the scenario's converge.yml recorded."""

import datetime
import platform

import pytest
import requests
import sitekit


def pytest_sessionstart(session):  # noqa: ARG001 (pytest hook signature)
    sitekit.ARTIFACTS.mkdir(exist_ok=True)
    sitekit.REPORT.write_text(
        f"# molecule/site, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.node()}: measured values\n",
        encoding="utf-8",
    )
    times = sitekit.EPHEMERAL / "converge-times.txt"
    lines = times.read_text().split("\n") if times.exists() else []
    runs = [float(end) - float(start) for start, end in (line.split() for line in lines if line.strip())]
    for number, seconds in enumerate(runs, 1):
        kind = "fresh converge" if number == 1 else "idempotent converge" if number == 2 else "converge"
        sitekit.report(f"{kind} #{number} (site.yml, 4 hosts): {seconds:.0f} s")
    with open("/proc/loadavg", encoding="utf-8") as load:
        sitekit.report(f"load average at verify start: {load.read().split()[0]}")


class Airflow:
    """The Airflow REST API v2 with a JWT of the generated admin."""

    def __init__(self):
        self.session = requests.Session()
        self._login()

    url = sitekit.AIRFLOW_URL

    def _login(self):
        resp = sitekit.airflow_admin_sign_in()
        assert resp.status_code == 201, resp.text
        self.session.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"

    def request(self, method, path, **kwargs):
        resp = self.session.request(method, f"{self.url}{path}", timeout=30, verify=sitekit.CA, **kwargs)
        if resp.status_code == 401:  # token of an api-server before a restart: log in again
            self._login()
            resp = self.session.request(method, f"{self.url}{path}", timeout=30, verify=sitekit.CA, **kwargs)
        return resp

    def dag_ids(self):
        resp = self.request("GET", "/api/v2/dags", params={"limit": 100})
        resp.raise_for_status()
        return {d["dag_id"] for d in resp.json()["dags"]}

    def trigger(self, dag_id, conf=None):
        resp = self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        assert resp.status_code == 200, resp.text
        resp = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        assert resp.status_code == 200, resp.text
        return resp.json()["dag_run_id"]

    def run_state(self, dag_id, run_id):
        resp = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        resp.raise_for_status()
        return resp.json()["state"]

    def wait_run(self, dag_id, run_id, timeout):
        """(final state, seconds) of a DAG run; state None when it did not finish in time."""
        start = sitekit.time.monotonic()
        while sitekit.time.monotonic() - start < timeout:
            try:
                state = self.run_state(dag_id, run_id)
            except requests.RequestException:
                state = None
            if state in ("success", "failed"):
                return state, sitekit.time.monotonic() - start
            sitekit.time.sleep(3)
        return None, sitekit.time.monotonic() - start

    def failed_tasks(self, dag_id, run_id):
        resp = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        if resp.status_code != 200:
            return resp.text
        return [(t["task_id"], t["state"]) for t in resp.json()["task_instances"] if t["state"] != "success"]


@pytest.fixture(scope="session")
def airflow():
    return Airflow()
