"""Test DAG of molecule/upgrade (the airflow role's suite, tests/test_2_airflow.py): a Python task that must succeed."""

import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False, tags=["molecule"])
def molecule_ok():
    @task
    def answer():
        return 42

    answer()


molecule_ok()
