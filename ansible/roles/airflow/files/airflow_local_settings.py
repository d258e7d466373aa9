"""Airflow's local settings (airflow role: $AIRFLOW_HOME/config, on Airflow's
sys.path), imported by every Airflow process when it starts.

Airflow 3.3.2 writes some str-Enum members into string columns as the members
themselves (the `callback` table: `type` = CallbackType.DAG_PROCESSOR,
`fetch_method` = CallbackFetchMethod.DAG_ATTRIBUTE, both varchar(20)).
PostgreSQL's driver sends their value; mysqlclient sends str(member),
'CallbackType.DAG_PROCESSOR', which MySQL refuses ("Data too long for column
'type'"). The scheduler writes such a row for every task instance that
stopped heartbeating (a lost Celery worker, a task process killed), and then
exits, again after every restart: the task is never retried. This hook sends
every str-Enum parameter to MySQL as its value (what PostgreSQL gets).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) and isinstance(value, str) else value


def _row(params: Any) -> Any:
    if isinstance(params, dict):
        return {key: _plain(value) for key, value in params.items()}
    if isinstance(params, (list, tuple)):
        return type(params)(_plain(value) for value in params)
    return params


@event.listens_for(Engine, "before_cursor_execute", retval=True)
def str_enums_as_values(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001, PLR0913
    """before_cursor_execute: the statement as it is, its parameters' str-Enum members as their values (MySQL only)."""
    if conn.dialect.name != "mysql":
        return statement, parameters
    if executemany:
        return statement, type(parameters)(_row(params) for params in parameters)
    return statement, _row(parameters)
