"""Airflow's CeleryExecutor in the scale profile (two Celery workers, the
broker on the db host): the tasks of one DAG run spread over both workers,
and a worker lost mid-task (its container killed, as a host that dies) costs
the run nothing: Airflow finds the task instances without a heartbeat,
retries them, and the other worker runs them. The logs of the tasks the lost
worker had finished stay readable: they are in the task logs bucket (remote
task logs), not only on the worker. From the control node, through
the edge, with the users' Airflow account (REST API v2); the operator's
`docker kill` stands in for the host's loss."""

from __future__ import annotations

import subprocess
import time

import pytest
from scalekit import Airflow, addresses, on_host, outside, report

DAG = "platform_fanout_check"  # dags/platform_fanout_check.py: 24 mapped tasks
TASKS = 24
# Where the api-server found a task's log: the task logs bucket (inventory/lab: oci_mlops_task_logs_bucket).
REMOTE = "s3://airflow-task-logs/"
# The spread test's run: (run id, its task instances), for the lost worker's test.
RUNS: dict[str, tuple[str, list[dict]]] = {}


# A task's log reaches the bucket after its state: the task supervisor
# uploads it once the task has reported its end, so the run can be `success`
# a moment before its last tasks' logs are in the bucket (the api-server
# meanwhile reads them from the worker's log server). Measured: 0 to a few s.
UPLOAD_BOUND = 30


def _remote_log(airflow: Airflow, run_id: str, task: dict) -> tuple[list[str], str, float]:
    """(sources, text, seconds waited) of a finished task's try, once the api-server reads it from the bucket
    (or the last answer after UPLOAD_BOUND seconds)."""
    started = time.monotonic()
    while True:
        sources, text = airflow.log(run_id, task["map_index"], task["try_number"])
        if any(s.startswith(REMOTE) for s in sources) or time.monotonic() - started > UPLOAD_BOUND:
            return sources, text, time.monotonic() - started
        time.sleep(1)


@pytest.fixture(scope="module")
def airflow(user_env, groups):
    if not groups.get("airflow_worker"):
        pytest.fail("the inventory has no airflow_worker hosts: not the scale profile with Celery")
    return Airflow(user_env)


@pytest.fixture(scope="module")
def worker_addresses(groups) -> dict[str, str]:
    """{address: worker host}: a task instance's hostname is its worker's address ([core] hostname_callable)."""
    return addresses(groups["airflow_worker"])


def test_the_tasks_of_a_run_spread_over_both_workers(airflow, worker_addresses):
    started = time.monotonic()
    run_id = airflow.trigger(seconds=5)
    state = airflow.wait(run_id, 600)
    tasks = airflow.tasks(run_id)
    assert state == "success", {t["map_index"]: t["state"] for t in tasks}
    assert len(tasks) == TASKS
    where = [worker_addresses.get(t["hostname"], t["hostname"]) for t in tasks]
    counts = {host: where.count(host) for host in sorted(set(where))}
    report(f"{DAG}: {TASKS} tasks of 5 s in {time.monotonic() - started:.0f} s, per worker: {counts}")
    assert set(counts) == set(worker_addresses.values()), counts
    RUNS["spread"] = (run_id, tasks)
    # one task of each worker: its log, read by the api-server from the task logs bucket
    for host in sorted(set(where)):
        task = next(t for t in tasks if worker_addresses.get(t["hostname"]) == host)
        sources, text, _ = _remote_log(airflow, run_id, task)
        assert any(s.startswith(REMOTE) for s in sources), (host, sources, text[:500])
        assert f"platform_fanout_check: task {task['map_index']} ran on " in text, (host, text[:500])


@pytest.fixture
def killed_worker(groups):
    """The first worker's container, killed by the test; started again after it."""
    host = groups["airflow_worker"][0]
    yield host
    subprocess.run(["docker", "start", host], capture_output=True, text=True, timeout=120, check=True)
    back = outside.wait_for(
        lambda: on_host(host, "systemctl", "is-active", "airflow-celery-worker.service").stdout.strip() == "active",
        180,
    )
    assert back is not None, f"{host}: airflow-celery-worker is not active 180 s after the container started again"


def test_a_lost_worker_costs_the_run_nothing(airflow, worker_addresses, killed_worker):
    """Tasks of 60 s; once some run on the first worker, its container is
    killed (SIGKILL to everything, as a host that dies). Airflow stops
    hearing from those task instances, marks them failed after
    [scheduler] task_instance_heartbeat_timeout (300 s) and retries them (the
    DAG's retries: 2): the other worker runs them and the run succeeds."""
    address = next(a for a, h in worker_addresses.items() if h == killed_worker)
    run_id = airflow.trigger(seconds=60)
    on_lost: list[dict] = []

    def some_run_there() -> bool:
        on_lost[:] = [t for t in airflow.tasks(run_id) if t["state"] == "running" and t["hostname"] == address]
        return bool(on_lost)

    assert outside.wait_for(some_run_there, 180, step=2) is not None, "no task ran on the first worker"
    killed_at = time.monotonic()
    subprocess.run(["docker", "kill", killed_worker], capture_output=True, text=True, timeout=60, check=True)
    state = airflow.wait(run_id, 1200)
    recovered = time.monotonic() - killed_at
    tasks = {t["map_index"]: t for t in airflow.tasks(run_id)}
    assert state == "success", {i: t["state"] for i, t in tasks.items()}
    lost = sorted(t["map_index"] for t in on_lost)
    for index in lost:
        again = tasks[index]
        assert again["try_number"] >= 2, again
        assert again["hostname"] != address and again["hostname"] in worker_addresses, again
    report(
        f"{DAG}: {len(lost)} tasks running on {killed_worker} when it was killed; retried on the other worker, "
        f"run succeeded {recovered:.0f} s after the kill (heartbeat timeout 300 s, retry delay 10 s, tasks of 60 s)"
    )
    # The worker is still gone (its container killed): the logs of the tasks it had finished
    # (the spread test's run) are read from the task logs bucket, and so are the retries' logs.
    assert "spread" in RUNS, "the spread test did not run first"
    spread_id, spread_tasks = RUNS["spread"]
    finished_there = [t for t in spread_tasks if t["hostname"] == address]
    assert finished_there, f"no task of the spread run had run on {killed_worker}"
    started = time.monotonic()
    waited = []
    for task in finished_there + [tasks[i] for i in lost]:
        run = spread_id if task in finished_there else run_id
        sources, text, seconds = _remote_log(airflow, run, task)
        waited.append(seconds)
        assert any(s.startswith(REMOTE) for s in sources), (task["map_index"], sources, text[:500])
        assert f"platform_fanout_check: task {task['map_index']} ran on " in text, text[:500]
    report(
        f"remote task logs: {len(finished_there)} logs of tasks that ran on {killed_worker} and {len(lost)} retries' "
        f"logs read through the REST API from {REMOTE} while {killed_worker} was down "
        f"({time.monotonic() - started:.1f} s for all; the longest wait for an upload {max(waited):.1f} s)"
    )
