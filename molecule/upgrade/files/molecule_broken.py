"""Test DAG of the airflow suite (molecule/upgrade) with a syntax error: must show as an import error."""

from airflow.sdk import dag

@dag(schedule=None
def molecule_broken():
    pass
