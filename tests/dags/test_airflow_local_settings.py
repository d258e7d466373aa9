"""The airflow role's airflow_local_settings.py (files/), with Airflow's own
enums: the str-Enum parameters of a statement reach MySQL as their values
('dag_processor', which fits the callback table's varchar(20)), not as the
members, which mysqlclient writes as 'CallbackType.DAG_PROCESSOR' (the
scheduler then exits at every task instance without a heartbeat; measured in
the scale lab, docs/scaling.md). Other databases get the parameters as they
were."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

from airflow.models.callback import CallbackFetchMethod, CallbackType
from sqlalchemy import event
from sqlalchemy.engine import Engine

SETTINGS = Path(__file__).resolve().parents[2] / "ansible" / "roles" / "airflow" / "files" / "airflow_local_settings.py"


def _load():
    spec = importlib.util.spec_from_file_location("role_airflow_local_settings", SETTINGS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HOOK = _load().str_enums_as_values


def _conn(dialect: str) -> SimpleNamespace:
    return SimpleNamespace(dialect=SimpleNamespace(name=dialect))


def test_the_hook_is_on_every_engine():
    assert event.contains(Engine, "before_cursor_execute", HOOK)


def test_mysql_gets_the_members_values():
    statement = "INSERT INTO callback (type, fetch_method, priority_weight) VALUES (%s, %s, %s)"
    params = (CallbackType.DAG_PROCESSOR, CallbackFetchMethod.DAG_ATTRIBUTE, 1)
    out_statement, out = HOOK(_conn("mysql"), None, statement, params, None, False)
    assert out_statement == statement
    assert out == ("dag_processor", "dag_attribute", 1)
    assert [type(v) for v in out] == [str, str, int]
    assert max(len(v) for v in out[:2]) <= 20  # the columns' varchar(20)
    # str(member), what mysqlclient would have written: too long for the column
    assert len(str(CallbackType.DAG_PROCESSOR)) > 20


def test_mysql_dict_and_executemany_parameters():
    _, one = HOOK(_conn("mysql"), None, "s", {"type": CallbackType.TRIGGERER, "n": None}, None, False)
    assert one == {"type": "triggerer", "n": None} and type(one["type"]) is str
    _, many = HOOK(_conn("mysql"), None, "s", [(CallbackType.EXECUTOR,), (CallbackType.TRIGGERER,)], None, True)
    assert many == [("executor",), ("triggerer",)]
    assert all(type(row[0]) is str for row in many)


def test_other_databases_get_the_parameters_as_they_were():
    params = (CallbackType.DAG_PROCESSOR,)
    _, out = HOOK(_conn("postgresql"), None, "s", params, None, False)
    assert out is params
