"""platform_fanout_check: an operator's check of the executor, not an ML pipeline.

24 tasks that may all run at once (dynamic task mapping), each sleeping
`seconds` and returning where it ran. With Celery workers (the
airflow_worker group, docs/scaling.md) they spread over the workers; each
task instance's `hostname` in the REST API (`GET
/api/v2/dags/platform_fanout_check/dagRuns/<run>/taskInstances`) is the
address of the host that ran it. Plain @task in Airflow's own interpreter:
no ML packages, no MLflow. Two retries: a task whose worker was lost runs
again on another (docs/scaling.md, "Losing a worker").
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

TASKS = 24


@dag(
    dag_id="platform_fanout_check",
    description=f"{TASKS} parallel tasks that report the host they ran on (executor check)",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["platform", "check"],
    params={"seconds": Param(5, type="integer", minimum=0, maximum=600, description="how long each task sleeps")},
    default_args={"retries": 2, "retry_delay": pendulum.duration(seconds=10)},
    max_active_tasks=TASKS,
)
def platform_fanout_check() -> None:
    @task
    def where(index: int, seconds: str) -> dict:
        import socket
        import time

        time.sleep(int(seconds))
        # In the task's log (remote task logs: readable after its worker is gone).
        print(f"platform_fanout_check: task {index} ran on {socket.gethostname()}")
        return {"index": index, "host": socket.gethostname()}

    where.partial(seconds="{{ params.seconds }}").expand(index=list(range(TASKS)))


platform_fanout_check()
