"""Test DAG of molecule/upgrade (the airflow role's suite, tests/test_2_airflow.py), published while Airflow runs."""

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG(dag_id="molecule_new", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
    EmptyOperator(task_id="noop")
