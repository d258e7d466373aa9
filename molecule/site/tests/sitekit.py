"""Helpers shared by the site scenario's suites (end-to-end, drift, faults).

Hosts are reached with `docker exec` (the lab's transport), services from the
control node through the edge (https://localhost:<443 + LAB_PORT_OFFSET>, the
scenario's lab CA; the backends admit only their clients' addresses, so a
service is checked directly only from its own host), and Ansible is run exactly
as an operator runs it: `ansible-playbook` from the repository root against
molecule's inventory. Measured figures are appended to the site report.
"""

from __future__ import annotations

import datetime
import json
import os
import runpy
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import requests
import yaml

PROJECT = Path(__file__).resolve().parents[3]
# molecule/_shared/files/ansible_run.py (run_playbook), shared with the db host's tests in molecule/upgrade.
_ANSIBLE_RUN = SimpleNamespace(**runpy.run_path(str(PROJECT / "molecule" / "_shared" / "files" / "ansible_run.py")))
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/tmp"))
ARTIFACTS = PROJECT / "artifacts"
REPORT = ARTIFACTS / "site-report.txt"
# The scenario's controller-generated secrets (oci_mlops_secrets_dir of its inventory).
SECRETS_DIR = Path(INVENTORY).parent / ".secrets"

DB, MLFLOW, AIRFLOW, API, EDGE = "mol-site-db", "mol-site-mlflow", "mol-site-airflow", "mol-site-api", "mol-site-edge"
HOSTS = (DB, MLFLOW, AIRFLOW, API, EDGE)

# The front door as published on the control node (molecule.yml's LAB_PORT_OFFSET), and the
# lab CA site.yml created with the scenario's secrets. Pass verify=CA per request: the
# control node's REQUESTS_CA_BUNDLE would override a Session's verify.
_SCENARIO_ENV = yaml.safe_load((PROJECT / "molecule" / "site" / "molecule.yml").read_text())["provisioner"]["env"]
EDGE_URL = f"https://localhost:{443 + int(_SCENARIO_ENV['LAB_PORT_OFFSET'])}"
CA = str(Path(INVENTORY).parent / ".secrets" / "lab-ca" / "lab-ca.crt")
# Airflow through the edge, like every user (the api-server admits only the edge).
AIRFLOW_URL = f"{EDGE_URL}/airflow"

MODEL = "iris-classifier"
ALIAS = "champion"
TRAINING_DAG = "iris_training"
BATCH_DAG = "iris_batch_inference"


def role_defaults(role: str) -> dict:
    """A role's defaults/main.yml (the versions and settings the platform gets unless an inventory overrides them)."""
    return yaml.safe_load((PROJECT / "ansible" / "roles" / role / "defaults" / "main.yml").read_text())


def secret(*names: str) -> str:
    """A controller-generated secret of the scenario (first of the names that exists)."""
    for name in names:
        if (SECRETS_DIR / name).exists():
            return (SECRETS_DIR / name).read_text().split()[0]
    raise FileNotFoundError(f"none of {names} in {SECRETS_DIR}")


def airflow_admin_sign_in() -> requests.Response:
    """POST /auth/token through the edge with the generated Airflow admin password."""
    return requests.post(
        f"{AIRFLOW_URL}/auth/token",
        json={"username": "admin", "password": secret("airflow_admin_password")},
        timeout=30,
        verify=CA,
    )


def api_key() -> str:
    return secret("oci_mlops_api_key", "api_key")


def report(line: str) -> None:
    """Append a measured figure to artifacts/site-report.txt (and print it)."""
    ARTIFACTS.mkdir(exist_ok=True)
    with REPORT.open("a", encoding="utf-8") as out:
        out.write(line + "\n")
    print(f"[site-report] {line}")


def sh(host: str, cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a shell command on a lab host as root."""
    return subprocess.run(
        ["docker", "exec", host, "bash", "-c", cmd], capture_output=True, text=True, timeout=timeout, check=False
    )


def out(host: str, cmd: str, timeout: float = 120) -> str:
    """Run a command that must succeed; return its stdout, stripped."""
    run = sh(host, cmd, timeout)
    assert run.returncode == 0, f"{host}: `{cmd}` exited {run.returncode}: {run.stderr.strip()[-2000:]}"
    return run.stdout.strip()


def ip(host: str) -> str:
    """The host's current address on the scenario network (fixed by lab_containers; the fault suite checks it stays)."""
    data = json.loads(subprocess.check_output(["docker", "inspect", host]))[0]
    return next(iter(data["NetworkSettings"]["Networks"].values()))["IPAddress"]


def wait(predicate, timeout: float, step: float = 1.0):
    """Seconds until predicate() was true, or None after timeout. Exceptions count as false."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if predicate():
                return time.monotonic() - start
        except (requests.RequestException, ValueError, KeyError, AssertionError, subprocess.SubprocessError):
            pass
        time.sleep(step)
    return None


def playbook(playbook_path: str, *args: str, check: bool = False, timeout: float = 1800) -> dict:
    """Run ansible-playbook from the repository root against the scenario's hosts.

    Returns {"rc", "seconds", "changed": {(host, task name), ...}, "stats", "failed": [...], "output"}
    using the JSON callback, so each changed task is known by host and name.
    """
    if check:
        args = (*args, "--check", "--diff")
    start = time.monotonic()
    run, data = _ANSIBLE_RUN.run_playbook(INVENTORY, playbook_path, *args, timeout=timeout)
    seconds = time.monotonic() - start
    changed, failed, tasks, plays = set(), [], [], []
    for play in data["plays"]:
        plays.append((_seconds(play["play"]["duration"]), play["play"]["name"]))
        for task in play["tasks"]:
            tasks.append((_seconds(task["task"]["duration"]), task["task"]["name"]))
            for host, result in task["hosts"].items():
                name = task["task"]["name"]
                if result.get("changed"):
                    changed.add((host, name))
                if result.get("failed") or result.get("unreachable"):
                    failed.append(f"{host}: {name}: {result.get('msg', '')} {result.get('stderr', '')}"[:1500])
    return {
        "rc": run.returncode,
        "seconds": seconds,
        "changed": changed,
        "stats": data.get("stats", {}),
        "failed": failed,
        "output": run.stdout + run.stderr,
        "plays": plays,
        "slowest": sorted(tasks, reverse=True)[:8],
    }


def _seconds(duration: dict) -> float:
    """Length of a play or task from the JSON callback's ISO timestamps (0 when unfinished)."""
    if "end" not in duration:
        return 0.0
    start, end = (datetime.datetime.fromisoformat(duration[k].rstrip("Z")) for k in ("start", "end"))
    return (end - start).total_seconds()


def profile(result: dict) -> str:
    """Where a run spent its time: each play, then the slowest tasks (for the report)."""
    plays = ", ".join(f"{name} {secs:.0f} s" for secs, name in result["plays"])
    tasks = "; ".join(f"{name} {secs:.0f} s" for secs, name in result["slowest"])
    return f"    plays: {plays}\n    slowest tasks: {tasks}"


def changed_count(result: dict) -> int:
    return sum(s.get("changed", 0) for s in result["stats"].values())


def changed_lines(result: dict) -> str:
    """The (host, task) pairs a run reported changed, one per line (for assertion messages)."""
    return "\n".join(f"  {h}: {t}" for h, t in sorted(result["changed"])) or "  (none)"


# --- service health, as seen from each host (used by the fault suite) ---


def _http_code(host: str, url: str, extra: str = "") -> str:
    return sh(host, f"curl -s -o /dev/null -m 5 -w '%{{http_code}}' {extra} {url}", timeout=30).stdout.strip()


def mysql_ok() -> bool:
    return sh(DB, "mysqladmin --connect-timeout=3 ping", timeout=30).returncode == 0


def object_store_ok() -> bool:
    # rclone serve s3 answers an unsigned request with an S3 error (403): it serves.
    return _http_code(DB, f"http://{ip(DB)}:9000/") not in ("", "000")


def mlflow_ok() -> bool:
    # Behind the edge MLflow listens on its private address only.
    return _http_code(MLFLOW, f"http://{ip(MLFLOW)}:5000/health") == "200"


def mlflow_db_ok() -> bool:
    """MLflow answers an authenticated query that reads the database."""
    cmd = (
        f"curl -s -m 10 -o /dev/null -w '%{{http_code}}' -u admin:{secret('mlflow_admin_password')} "
        f"'http://{ip(MLFLOW)}:5000/api/2.0/mlflow/registered-models/search?max_results=1'"
    )
    return sh(MLFLOW, cmd, timeout=30).stdout.strip() == "200"


def airflow_health() -> dict:
    # Through the edge (the api-server admits only the edge's address): /airflow is its base_url.
    return requests.get(f"{EDGE_URL}/airflow/api/v2/monitor/health", timeout=10, verify=CA).json()


def api_ok() -> bool:
    return _http_code(API, f"http://{ip(API)}:8000/health") == "200"


def api_ready() -> bool:
    return _http_code(API, f"http://{ip(API)}:8000/ready") == "200"


def dashboard_ok() -> bool:
    # Streamlit under its base path (the edge's route).
    return sh(API, f"curl -s -m 5 http://{ip(API)}:8501/dashboard/_stcore/health", timeout=30).stdout.strip() == "ok"


def edge_ok() -> bool:
    """The edge answers HTTPS with the lab CA's certificate (its landing redirect)."""
    try:
        return requests.get(f"{EDGE_URL}/", timeout=10, verify=CA, allow_redirects=False).status_code == 302
    except requests.RequestException:
        return False


def main_pid(host: str, unit: str) -> int:
    return int(out(host, f"systemctl show -p MainPID --value {unit}") or 0)


def active(host: str, unit: str) -> bool:
    return sh(host, f"systemctl is-active --quiet {unit}").returncode == 0


# --- clients run on a lab host (the role suites of the mlflow, api and dashboard hosts) ---

# HTTP requests made from a lab host with the stdlib (each on a fresh connection), the request
# list on stdin: no credential on a command line. Prints [[status, seconds, body], ...].
_HTTP_FROM = r"""
import base64, json, sys, time, urllib.error, urllib.request
out = []
for r in json.load(sys.stdin):
    body = json.dumps(r["body"]).encode() if r.get("body") is not None else None
    req = urllib.request.Request(r["url"], method=r.get("method", "GET"), data=body, headers=r.get("headers", {}))
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if r.get("user") is not None:
        token = base64.b64encode(("%s:%s" % (r["user"], r["password"])).encode()).decode()
        req.add_header("Authorization", "Basic " + token)
    start = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, data = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, data = err.code, err.read()
    out.append([status, time.monotonic() - start, data.decode("utf-8", "replace")])
print(json.dumps(out))
"""


def http_from(host: str, requests_: list[dict], timeout: float = 300) -> list[tuple[int, float, str]]:
    """Make HTTP requests from a lab host, in order: each {"url", optional "user"/"password"
    (basic auth), "method", "body" (JSON), "headers"}. Returns (status, seconds, body) per request;
    the seconds are measured on the host."""
    run = subprocess.run(
        ["docker", "exec", "-i", host, "python3", "-c", _HTTP_FROM],
        input=json.dumps(requests_),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert run.returncode == 0, f"{host}: HTTP client failed: {run.stderr[-2000:]}"
    return [(status, seconds, body) for status, seconds, body in json.loads(run.stdout)]


# Runs a script with MLflow's client on the mlflow host: credentials and URI on stdin (first line,
# JSON), never on a command line; the script's last output line is JSON.
_MLFLOW_CLIENT_PREAMBLE = """
import json as _json, os as _os, sys as _sys
_os.environ.update(_json.loads(_sys.stdin.readline()))
"""


def mlflow_client(script: str, user: str, password: str, *args: str, timeout: float = 300):
    """Run `script` (Python, `args` its sys.argv[1:]) on the mlflow host with MLflow's virtualenv
    and client, signed in as `user`; returns the JSON of its last output line."""
    env = {
        "MLFLOW_TRACKING_URI": f"http://{ip(MLFLOW)}:5000",
        "MLFLOW_TRACKING_USERNAME": user,
        "MLFLOW_TRACKING_PASSWORD": password,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    }
    run = subprocess.run(
        [
            "docker",
            "exec",
            "-i",
            "-w",
            "/tmp",
            MLFLOW,
            "/opt/mlflow/venv/bin/python",
            "-c",
            _MLFLOW_CLIENT_PREAMBLE + script,
            *args,
        ],
        input=json.dumps(env) + "\n",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert run.returncode == 0, f"MLflow client script failed: {run.stderr[-3000:]}"
    return json.loads(run.stdout.strip().splitlines()[-1])


def register_iris_model(name: str) -> str:
    """Log an iris model as the MLflow admin, register it as `name` with alias champion
    (molecule/_shared/files/register_model.py); returns the version."""
    script = (PROJECT / "molecule" / "_shared" / "files" / "register_model.py").read_text()
    return str(mlflow_client(script, "admin", secret("mlflow_admin_password"), name))
