"""Test DAG of molecule/upgrade (the airflow role's suite, tests/test_2_airflow.py) with a syntax error: must show as an import error."""

from airflow.sdk import dag

@dag(schedule=None
def molecule_broken():
    pass
