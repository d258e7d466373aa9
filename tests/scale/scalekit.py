"""Helpers of tests/scale (conftest.py takes its fixtures from here; the
tests import the rest by this name, not as `conftest`, which tests/outside's
module also is). The scale profile (`make lab SCALE=2`, inventory/lab-scale) seen from the
control node: the users' fixtures of tests/outside (client.env, the users'
clients through the edge), plus what an operator does to a host of the lab
(stop a service with `docker exec <host> systemctl ...`).

    OCI_MLOPS_INVENTORY   the inventory directory (make scale-test: inventory/lab-scale)

Run after tests/outside against the same platform (make scale-test runs
both): the model the quickstart trained is what the load loops predict with.
Measured figures go to artifacts/scale-report.txt.
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import yaml

_OUTSIDE = Path(__file__).resolve().parents[1] / "outside" / "conftest.py"
_spec = importlib.util.spec_from_file_location("outside_conftest", _OUTSIDE)
assert _spec is not None and _spec.loader is not None
outside = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(outside)

# The users' fixtures, as tests/outside has them.
client_env = outside.client_env
user_env = outside.user_env

INVENTORY = outside.INVENTORY
REPORT = outside.ARTIFACTS / "scale-report.txt"


def start_report() -> None:
    outside.start_report(REPORT, "tests/scale")


def report(line: str) -> None:
    """Append a measured figure to artifacts/scale-report.txt (and print it)."""
    outside.append_report(REPORT, line)


@pytest.fixture(scope="session")
def groups() -> dict[str, list[str]]:
    """The inventory's groups and their hosts (the lab's hosts.yml)."""
    hosts = yaml.safe_load((INVENTORY / "hosts.yml").read_text(encoding="utf-8"))
    found = {name: list((spec or {}).get("hosts") or {}) for name, spec in hosts["all"]["children"].items()}
    for group in ("mlflow", "api"):
        assert len(found.get(group, [])) >= 2, f"{INVENTORY} has fewer than two {group} hosts: not the scale profile"
    return found


def on_host(host: str, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a command on a lab host as its operator would (docker exec)."""
    return subprocess.run(["docker", "exec", host, *argv], capture_output=True, text=True, timeout=timeout, check=False)


def systemctl(host: str, action: str, unit: str) -> None:
    done = on_host(host, "systemctl", action, unit)
    assert done.returncode == 0, f"{host}: systemctl {action} {unit}: {done.stderr[-500:]}"


def edge_upstreams(edge: str, since: str, route: str) -> list[str]:
    """The backends (upstream=) the edge's access log names for requests under ROUTE since SINCE."""
    done = on_host(edge, "journalctl", "-t", "nginx_edge", "--since", since, "-o", "cat", "--no-pager")
    assert done.returncode == 0, done.stderr[-500:]
    return [
        line.split("upstream=", 1)[1].split()[0]
        for line in done.stdout.splitlines()
        if f'"POST {route}' in line or f'"GET {route}' in line
    ]


def load(call, rate: int, seconds: int, during=None) -> dict:
    """`rate` calls a second for `seconds` (call(session) -> HTTP status),
    each on its schedule (a slow answer does not slow the others down);
    `during` runs in a thread once the loop has started. Returns what was
    sent and answered."""
    local = threading.local()
    results: list[tuple[int | str, float]] = []
    lock = threading.Lock()

    def one(at: float) -> None:
        time.sleep(max(0.0, at - time.monotonic()))
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        started = time.monotonic()
        try:
            status: int | str = call(session)
        except requests.RequestException as exc:
            status = type(exc).__name__
        with lock:
            results.append((status, time.monotonic() - started))

    start = time.monotonic() + 0.5
    side = threading.Thread(target=during) if during else None
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(one, start + i / rate) for i in range(rate * seconds)]
        if side:
            time.sleep(2)
            side.start()
        for future in futures:
            future.result()
    if side:
        side.join()
    failed = [status for status, _ in results if status != 200]
    latencies = sorted(seconds for _, seconds in results)
    return {
        "sent": len(results),
        "failed": len(failed),
        "statuses": sorted({str(s) for s in failed}),
        "p50_ms": round(statistics.median(latencies) * 1000),
        "p99_ms": round(outside.percentile(latencies, 99) * 1000),
        "wall_s": round(time.monotonic() - start, 1),
    }


def edge_now(edge: str) -> str:
    """The edge host's clock (since= of edge_upstreams)."""
    done = on_host(edge, "date", "+%Y-%m-%d %H:%M:%S")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def addresses(hosts: list[str]) -> dict[str, str]:
    """{private address: host} of lab hosts: Airflow names a job's or a
    task's host by its address ([core] hostname_callable)."""
    out = {}
    for host in hosts:
        done = on_host(host, "hostname", "-I")
        assert done.returncode == 0, done.stderr
        out[done.stdout.split()[0]] = host
    return out


class Airflow:
    """Airflow's REST API v2 through the edge, as a user with the users' account (client.env)."""

    def __init__(self, env: dict[str, str], dag: str = "platform_fanout_check"):
        self.dag = dag
        self.url = env["AIRFLOW_URL"]
        self.verify = env["OCI_MLOPS_CA_BUNDLE"]
        self.session = requests.Session()
        token = requests.post(
            f"{self.url}/auth/token",
            json={"username": env["AIRFLOW_USERNAME"], "password": env["AIRFLOW_PASSWORD"]},
            timeout=30,
            verify=self.verify,
        )
        assert token.status_code == 201, f"POST /auth/token: {token.status_code} {token.text[:300]}"
        self.session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def call(self, method: str, path: str, **kwargs) -> dict:
        resp = self.session.request(method, f"{self.url}{path}", timeout=30, verify=self.verify, **kwargs)
        assert resp.status_code == 200, f"{method} {path}: {resp.status_code} {resp.text[:300]}"
        return resp.json()

    def trigger(self, seconds: int) -> str:
        paused = self.call("PATCH", f"/api/v2/dags/{self.dag}", json={"is_paused": False})
        assert paused["is_paused"] is False
        body = {"logical_date": None, "conf": {"seconds": seconds}}
        run = self.call("POST", f"/api/v2/dags/{self.dag}/dagRuns", json=body)
        return run["dag_run_id"]

    def tasks(self, run_id: str) -> list[dict]:
        got = self.call("GET", f"/api/v2/dags/{self.dag}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        return got["task_instances"]

    def log(self, run_id: str, index: int, try_number: int) -> tuple[list[str], str]:
        """(where the api-server read it, its text) of one mapped task's try, as the UI gets it."""
        got = self.call(
            "GET",
            f"/api/v2/dags/{self.dag}/dagRuns/{run_id}/taskInstances/where/logs/{try_number}",
            params={"map_index": index, "full_content": "true"},
            headers={"Accept": "application/json"},
        )
        content = got["content"] if isinstance(got["content"], list) else [got["content"]]
        events = [str(m.get("event", "")) if isinstance(m, dict) else str(m) for m in content]
        # Airflow's first group lists where the api-server read the log (a bucket's URL, a log server's, a file)
        sources: list[str] = []
        if events and events[0] == "::group::Log message source details" and "::endgroup::" in events:
            sources = events[1 : events.index("::endgroup::")]
        text = "\n".join(events)
        return sources, text

    def wait(self, run_id: str, timeout: float) -> str:
        state: dict[str, str] = {}

        def finished() -> bool:
            state["value"] = self.call("GET", f"/api/v2/dags/{self.dag}/dagRuns/{run_id}")["state"]
            return state["value"] in ("success", "failed")

        outside.wait_for(finished, timeout, step=3)
        return state.get("value", "")


def converge(tag: str, limit: str, *extra: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    """site.yml's role TAG on the hosts of LIMIT, as an operator runs it."""
    return subprocess.run(
        [
            str(outside.ROOT / ".venv" / "bin" / "ansible-playbook"),
            "site.yml",
            "-i",
            str(INVENTORY),
            "--tags",
            tag,
            "--limit",
            limit,
            *extra,
        ],
        cwd=outside.ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def started_at(host: str, unit: str) -> int:
    """When UNIT last became active on HOST (monotonic µs; the containers share the kernel's clock)."""
    done = on_host(host, "systemctl", "show", "-p", "ActiveEnterTimestampMonotonic", "--value", unit)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip() or 0)
