"""Test DAG of molecule/airflow with a syntax error: must show as an import error."""

from airflow.sdk import dag

@dag(schedule=None
def molecule_broken():
    pass
