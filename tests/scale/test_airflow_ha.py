"""Airflow's servers on two hosts (the scale profile: scale-airflow-1 and -2,
with the Celery workers): each runs a scheduler (Airflow's HA schedulers, row
locks on MySQL), a triggerer and an api-server behind the edge; the first
also runs the dag-processor (one per DAG bundle). From the control node,
through the edge, with the users' Airflow account (REST API v2); the
operator's `docker exec ... systemctl stop` stands in for a lost service:

- both schedulers and both triggerers heartbeat, one dag-processor does;
- REST calls spread over both api-servers (a token from one is good on the other);
- one scheduler stopped: the other schedules a new run's tasks within 30 s;
- one api-server stopped under a bounded loop of REST calls: none fails;
- a changed Airflow setting converged on both hosts restarts them one at a
  time (each api-server answers again before the next host restarts) while
  the loop of REST calls goes on: none fails.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from scalekit import (
    Airflow,
    addresses,
    converge,
    edge_now,
    edge_upstreams,
    load,
    on_host,
    outside,
    report,
    started_at,
    systemctl,
)

# The bounded load loop: this many REST calls per second for this long.
RATE, SECONDS = 20, 30
# Stopping one scheduler: the other must have queued a new run's first task within this many seconds.
SCHEDULING_BOUND = 30


@pytest.fixture(scope="module")
def airflow(user_env, groups):
    if len(groups.get("airflow", [])) < 2:
        pytest.fail("the inventory has fewer than two airflow hosts: not the scale profile")
    return Airflow(user_env)


@pytest.fixture(scope="module")
def airflow_addresses(groups) -> dict[str, str]:
    """{address: airflow host}: Airflow names a job's host by its address ([core] hostname_callable)."""
    return addresses(groups["airflow"])


def _alive(airflow: Airflow, job_type: str) -> list[str]:
    """The addresses of the hosts whose job of this type heartbeats (GET /api/v2/jobs?is_alive=true)."""
    got = airflow.call("GET", "/api/v2/jobs", params={"job_type": job_type, "is_alive": "true", "limit": 100})
    return sorted(job["hostname"] for job in got["jobs"])


def _get_dag(airflow: Airflow, session) -> int:
    """One REST call as a user makes it (the DAG's details), through the edge."""
    resp = session.get(
        f"{airflow.url}/api/v2/dags/{airflow.dag}",
        headers={"Authorization": airflow.session.headers["Authorization"]},
        timeout=30,
        verify=airflow.verify,
    )
    return resp.status_code


def _wait_api_servers(airflow: Airflow, groups, timeout: float = 180) -> None:
    """Until each airflow host's api-server answers its health endpoint on the host."""
    for host in groups["airflow"]:
        waited = outside.wait_for(
            lambda host=host: on_host(host, "systemctl", "is-active", "airflow-api-server.service").returncode == 0,
            timeout,
        )
        assert waited is not None, f"{host}: airflow-api-server did not come back within {timeout} s"
    assert outside.wait_for(lambda: _get_dag(airflow, airflow.session) == 200, timeout) is not None


def test_every_airflow_host_schedules_and_one_parses(airflow, airflow_addresses, groups):
    """Two schedulers and two triggerers heartbeat (one per host); one
    dag-processor, on the first airflow host."""
    every = sorted(airflow_addresses)
    waited = outside.wait_for(lambda: _alive(airflow, "SchedulerJob") == every, 120)
    schedulers = _alive(airflow, "SchedulerJob")
    triggerers = _alive(airflow, "TriggererJob")
    processors = _alive(airflow, "DagProcessorJob")
    named = {
        kind: [airflow_addresses.get(a, a) for a in found]
        for kind, found in {"schedulers": schedulers, "triggerers": triggerers, "dag-processors": processors}.items()
    }
    report(f"airflow jobs alive (waited {waited} s): {named}")
    assert schedulers == every, named
    assert triggerers == every, named
    assert [airflow_addresses.get(a) for a in processors] == [groups["airflow"][0]], named


def test_rest_calls_spread_over_both_api_servers(airflow, groups):
    edge = groups["edge"][0]
    since = edge_now(edge)
    statuses = [_get_dag(airflow, airflow.session) for _ in range(20)]
    assert statuses == [200] * 20, statuses
    served = edge_upstreams(edge, since, f"/airflow/api/v2/dags/{airflow.dag}")
    counts = {address: served.count(address) for address in sorted(set(served))}
    report(f"20 Airflow REST calls through the edge (one token), per api-server: {counts}")
    assert len(counts) == len(groups["airflow"]), counts


@pytest.fixture
def one_scheduler_stopped(airflow, airflow_addresses, groups):
    host = groups["airflow"][0]
    systemctl(host, "stop", "airflow-scheduler.service")
    yield host
    systemctl(host, "start", "airflow-scheduler.service")
    every = sorted(airflow_addresses)
    assert outside.wait_for(lambda: _alive(airflow, "SchedulerJob") == every, 120) is not None


def test_a_stopped_scheduler_costs_no_scheduling(airflow, airflow_addresses, one_scheduler_stopped):
    """With the first host's scheduler stopped, the other one queues a new
    run's tasks within SCHEDULING_BOUND seconds, and the run succeeds."""
    others = sorted(a for a, h in airflow_addresses.items() if h != one_scheduler_stopped)
    assert outside.wait_for(lambda: _alive(airflow, "SchedulerJob") == others, 60) is not None, _alive(
        airflow, "SchedulerJob"
    )
    started = time.monotonic()
    run_id = airflow.trigger(seconds=1)
    first: dict[str, float] = {}

    def scheduled() -> bool:
        if any(t["state"] in ("queued", "running", "success") for t in airflow.tasks(run_id)):
            first.setdefault("seconds", time.monotonic() - started)
        return "seconds" in first

    outside.wait_for(scheduled, 120, step=0.5)
    state = airflow.wait(run_id, 600)
    took = time.monotonic() - started
    report(
        f"{one_scheduler_stopped}'s scheduler stopped: a new run's first task queued after "
        f"{first.get('seconds', float('nan')):.1f} s, the run {state} in {took:.0f} s (one scheduler)"
    )
    assert "seconds" in first and first["seconds"] <= SCHEDULING_BOUND, first
    assert state == "success", {t["map_index"]: t["state"] for t in airflow.tasks(run_id)}


@pytest.fixture
def one_api_server_stopped(airflow, groups):
    host = groups["airflow"][-1]
    yield host
    systemctl(host, "start", "airflow-api-server.service")
    _wait_api_servers(airflow, groups)


def test_a_stopped_api_server_fails_no_rest_call(airflow, one_api_server_stopped):
    result = load(
        lambda session: _get_dag(airflow, session),
        RATE,
        SECONDS,
        during=lambda: systemctl(one_api_server_stopped, "stop", "airflow-api-server.service"),
    )
    report(f"{RATE} Airflow REST calls/s for {SECONDS} s while {one_api_server_stopped}'s api-server stops: {result}")
    assert result["sent"] == RATE * SECONDS
    assert result["failed"] == 0, result


def _converge_airflow(*extra: str) -> subprocess.CompletedProcess:
    return converge("airflow", "airflow", *extra)


@pytest.fixture
def airflow_config_changed(airflow, groups):
    yield
    back = _converge_airflow()
    assert back.returncode == 0, back.stdout[-3000:]
    _wait_api_servers(airflow, groups)


def test_a_rolling_restart_of_the_airflow_hosts_fails_no_rest_call(airflow, groups, airflow_config_changed):
    """A changed setting in airflow.cfg (the dag-processor's refresh
    interval) restarts every Airflow service of both hosts, one host at a
    time, while REST calls keep coming through the edge: none fails."""
    units = ["airflow-api-server.service", "airflow-scheduler.service"]
    before = {(host, unit): started_at(host, unit) for host in groups["airflow"] for unit in units}
    converge: dict = {}
    started = time.monotonic()

    def roll() -> None:
        converge["run"] = _converge_airflow("-e", "airflow_dag_processor_refresh_interval=11")
        converge["seconds"] = time.monotonic() - started

    seconds = 420
    result = load(lambda session: _get_dag(airflow, session), RATE, seconds, during=roll)
    run = converge["run"]
    assert run.returncode == 0, run.stdout[-3000:]
    assert converge["seconds"] < seconds, converge["seconds"]
    after = {(host, unit): started_at(host, unit) for host in groups["airflow"] for unit in units}
    restarted = [key for key in before if after[key] != before[key]]
    assert sorted(restarted) == sorted(before), {"before": before, "after": after}
    # One host at a time: the api-servers came up seconds apart (the next host
    # restarted once this one's api-server answered, and the edge took it back).
    api = [after[(host, units[0])] for host in groups["airflow"]]
    apart = (max(api) - min(api)) / 1e6
    report(
        f"rolling restart of {len(groups['airflow'])} airflow hosts (converge {converge['seconds']:.0f} s, "
        f"api-servers {apart:.1f} s apart) under {RATE} REST calls/s: {result}"
    )
    assert apart >= 10, f"the api-servers restarted {apart:.1f} s apart: not one host at a time"
    assert result["failed"] == 0, result
