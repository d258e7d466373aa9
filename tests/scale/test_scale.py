"""Two MLflow hosts and two API hosts behind the edge (the scale profile):
requests spread over both hosts of each group, and a host whose service is
stopped costs no request: the users' calls go through the edge's public
route, the platform's own calls (the API loading models from MLflow) through
its peers' listener."""

from __future__ import annotations

import subprocess
import time

import pytest
import requests
from scalekit import converge, edge_now, edge_upstreams, load, on_host, outside, report, started_at, systemctl

MODEL = "iris-classifier"  # registered by the iris_training pipeline (tests/outside's quickstart ran it)
ROW = {"data": [[5.1, 3.5, 1.4, 0.2]]}

# The bounded load loop: this many requests per second for this long.
RATE, SECONDS = 20, 30


def _predict(env: dict[str, str], session: requests.Session) -> int:
    resp = session.post(
        f"{env['OCI_MLOPS_API_URL']}/predict/{MODEL}/champion",
        json=ROW,
        headers={"X-API-Key": env["OCI_MLOPS_API_KEY"]},
        timeout=30,
        verify=env["OCI_MLOPS_CA_BUNDLE"],
    )
    return resp.status_code


def _load(env: dict[str, str], during=None, seconds: int = SECONDS) -> dict:
    """RATE predictions a second for `seconds` through the edge (scalekit.load)."""
    return load(lambda session: _predict(env, session), RATE, seconds, during)


def _wait_ready(env: dict[str, str], timeout: float = 120) -> None:
    outside.wait_for(
        lambda: (
            requests.get(f"{env['OCI_MLOPS_API_URL']}/ready", timeout=10, verify=env["OCI_MLOPS_CA_BUNDLE"]).status_code
            == 200
        ),
        timeout,
    )


def test_predictions_spread_over_both_api_hosts(user_env, groups):
    edge = groups["edge"][0]
    since = edge_now(edge)
    session = requests.Session()
    statuses = [_predict(user_env, session) for _ in range(40)]
    assert statuses == [200] * 40, statuses
    served = edge_upstreams(edge, since, "/api/predict")
    counts = {address: served.count(address) for address in sorted(set(served))}
    report(f"40 predictions through the edge, per API backend: {counts}")
    assert len(counts) == len(groups["api"]), counts


def test_mlflow_calls_spread_over_both_mlflow_hosts(user_env, groups):
    edge = groups["edge"][0]
    since = edge_now(edge)
    auth = (user_env["MLFLOW_TRACKING_USERNAME"], user_env["MLFLOW_TRACKING_PASSWORD"])
    for _ in range(20):
        resp = requests.get(
            f"{user_env['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/registered-models/get",
            params={"name": MODEL},
            auth=auth,
            timeout=30,
            verify=user_env["OCI_MLOPS_CA_BUNDLE"],
        )
        assert resp.status_code == 200, resp.text[:300]
    served = edge_upstreams(edge, since, "/mlflow/api/2.0/mlflow/registered-models/get")
    counts = {address: served.count(address) for address in sorted(set(served))}
    report(f"20 MLflow REST calls through the edge, per MLflow backend: {counts}")
    assert len(counts) == len(groups["mlflow"]), counts


@pytest.fixture
def one_api_host_stopped(user_env, groups):
    host = groups["api"][0]
    yield host
    systemctl(host, "start", "oci-mlops-api.service")
    _wait_ready(user_env)


def test_a_stopped_api_host_fails_no_prediction(user_env, groups, one_api_host_stopped):
    """The bounded loop through the edge while one API host's service stops
    (in-flight requests finish; new ones go to the other host)."""
    result = _load(user_env, during=lambda: systemctl(one_api_host_stopped, "stop", "oci-mlops-api.service"))
    report(f"{RATE} req/s for {SECONDS} s while {one_api_host_stopped}'s API stops: {result}")
    assert result["sent"] == RATE * SECONDS
    assert result["failed"] == 0, result


@pytest.fixture
def one_mlflow_host_stopped(groups):
    host = groups["mlflow"][0]
    systemctl(host, "stop", "mlflow.service")
    yield host
    systemctl(host, "start", "mlflow.service")


def test_a_stopped_mlflow_host_fails_no_client_call(user_env, groups, one_mlflow_host_stopped):
    """MLflow's own client (a user's run) through the edge, and the API
    host's calls through the peers' listener, while one MLflow host is down."""
    code = """
import time, mlflow
from mlflow import MlflowClient
mlflow.set_experiment("scale-failover")
started = time.monotonic()
for i in range(10):
    with mlflow.start_run(run_name=f"failover-{i}"):
        mlflow.log_param("i", i)
        mlflow.log_metric("m", i * 0.5)
assert MlflowClient().get_registered_model("iris-classifier").name == "iris-classifier"
print(f"{time.monotonic() - started:.1f}")
"""
    done = outside.python(code, user_env, 300)
    seconds = outside.passed(done, "MLflow client with one MLflow host down").strip().splitlines()[-1]
    report(f"10 MLflow runs (start, param, metric, end) with {one_mlflow_host_stopped} down: {seconds} s, 0 failed")
    # The platform's own path: each API host reaches MLflow through the edge's peers' listener.
    for host in groups["api"]:
        peers = on_host(
            host,
            "python3",
            "-c",
            "import urllib.request;"
            "lines = open('/etc/oci-mlops-api/api.env').read().splitlines();"
            "env = dict(l.split('=', 1) for l in lines if '=' in l and not l.startswith('#'));"
            "print(urllib.request.urlopen(env['MLFLOW_TRACKING_URI'] + '/health', timeout=10).status)",
        )
        assert peers.returncode == 0 and peers.stdout.strip() == "200", (host, peers.stdout, peers.stderr[-500:])


def _converge_api(*extra: str) -> subprocess.CompletedProcess:
    return converge("model_api", "api", *extra, timeout=900)


def _started_at(host: str) -> int:
    return started_at(host, "oci-mlops-api.service")


@pytest.fixture
def api_config_changed():
    yield
    back = _converge_api()
    assert back.returncode == 0, back.stdout[-3000:]


def test_a_rolling_restart_of_the_api_hosts_fails_no_prediction(user_env, groups, api_config_changed):
    """A changed API setting (its log level) restarts both api hosts, one at
    a time (each answers again before the next restarts), while predictions
    keep coming through the edge: none fails."""
    before = {host: _started_at(host) for host in groups["api"]}
    converge: dict = {}
    started = time.monotonic()

    def roll() -> None:
        converge["run"] = _converge_api("-e", "model_api_log_level=DEBUG")
        converge["seconds"] = time.monotonic() - started

    result = _load(user_env, during=roll, seconds=180)
    run = converge["run"]
    assert run.returncode == 0, run.stdout[-3000:]
    # The whole roll happened while the loop ran.
    assert converge["seconds"] < 180, converge["seconds"]
    after = {host: _started_at(host) for host in groups["api"]}
    assert all(after[host] != before[host] for host in groups["api"]), (before, after)
    # One at a time: the hosts came up seconds apart (the next restarted once
    # the previous answered /health), not together. Containers share the
    # kernel's monotonic clock.
    apart = (max(after.values()) - min(after.values())) / 1e6
    report(
        f"rolling restart of {len(groups['api'])} API hosts (converge {converge['seconds']:.0f} s, "
        f"restarts {apart:.1f} s apart) under {RATE} req/s: {result}"
    )
    assert apart >= 2, f"the API hosts restarted {apart:.1f} s apart: not one at a time"
    assert result["failed"] == 0, result


# A unit that cannot start: a drop-in whose ExecStartPre fails, as a broken
# release or setting would (removed by the fixture). Under /run: the role
# owns /etc/systemd/system's drop-in directory and would remove it.
BROKEN = "/run/systemd/system/oci-mlops-api.service.d/zz-scale-test-broken.conf"
PENDING = "/var/lib/oci-mlops/restart-pending/oci-mlops-api.service"


def _active(host: str) -> str:
    return on_host(host, "systemctl", "is-active", "oci-mlops-api.service").stdout.strip()


@pytest.fixture
def api_restarts_broken(user_env, groups):
    """Every api host's API fails to start from now on (its running process is untouched)."""
    for host in groups["api"]:
        done = on_host(
            host,
            "sh",
            "-c",
            f"mkdir -p {BROKEN.rsplit('/', 1)[0]} && printf '[Service]\\nExecStartPre=/bin/false\\n' > {BROKEN}",
        )
        assert done.returncode == 0, done.stderr
    yield
    for host in groups["api"]:
        on_host(host, "rm", "-f", BROKEN)
    back = _converge_api()
    assert back.returncode == 0, back.stdout[-3000:]
    _wait_ready(user_env)


def test_a_failed_restart_stops_the_roll_and_the_rest_keep_serving(user_env, groups, api_restarts_broken):
    """A changed setting whose restart fails on the first api host: the roll
    stops there (the other host is not restarted and keeps serving its
    previous configuration), no prediction fails, and the converge fails
    naming both. Once repaired, the next converge (same setting, so no file
    changes on the held host) restarts the held host from its marker."""
    before = {host: _started_at(host) for host in groups["api"]}
    converge: dict = {}

    def roll() -> None:
        converge["run"] = _converge_api("-e", "model_api_log_level=WARNING")

    result = _load(user_env, during=roll, seconds=120)
    run = converge["run"]
    assert run.returncode != 0, run.stdout[-3000:]
    states = {host: _active(host) for host in groups["api"]}
    after = {host: _started_at(host) for host in groups["api"]}
    failed = [host for host in groups["api"] if states[host] != "active"]
    held = [host for host in groups["api"] if states[host] == "active" and after[host] == before[host]]
    report(
        f"a restart failing on {failed} during a roll of {len(groups['api'])} API hosts: held {held} "
        f"(not restarted, serving); under {RATE} req/s: {result}"
    )
    assert len(failed) == 1 and sorted(failed + held) == sorted(groups["api"]), (states, before, after)
    assert "the roll stopped at " + failed[0] in run.stdout, run.stdout[-3000:]
    for host in groups["api"]:
        assert on_host(host, "test", "-f", PENDING).returncode == 0, f"{host}: no pending restart marker"
    assert result["failed"] == 0, result

    # Repaired: the same setting again. The held host's files are already
    # written; its marker restarts it, and the failed host starts.
    for host in groups["api"]:
        on_host(host, "rm", "-f", BROKEN)
    again = _converge_api("-e", "model_api_log_level=WARNING")
    assert again.returncode == 0, again.stdout[-3000:]
    _wait_ready(user_env)
    for host in groups["api"]:
        assert _active(host) == "active", host
        assert on_host(host, "test", "-f", PENDING).returncode != 0, f"{host}: the marker is still there"
    for host in held:
        assert _started_at(host) != before[host], f"{host}: the held restart did not happen on the next converge"
