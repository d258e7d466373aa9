"""Each service user logs in with its generated password and sees only its own schema; a user
dropped and a grant revoked by hand are back after the next converge."""

import ipaddress
import os
from pathlib import Path

import pymysql
import pytest
import testinfra.utils.ansible_runner
from dbkit import converge

# The scenario's db host (the db host as site.yml converges it: groups db and objectstore).
testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("db")

SCHEMAS = ("mlflow", "airflow")
SYSTEM = {"information_schema", "performance_schema"}


def _secret(name):
    # Generated on the controller (ansible/roles/platform_defaults/defaults/main/secrets.yml).
    return (Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent / ".secrets" / name).read_text().split()[0]


def _ipv4(host):
    return next(a for a in host.interface("eth0").addresses if ipaddress.ip_address(a).version == 4)


def _connect(host, user, password, **kwargs):
    return pymysql.connect(host=_ipv4(host), user=user, password=password, connect_timeout=5, **kwargs)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_schema_exists_with_utf8mb4(host, schema):
    out = host.check_output(
        "mysql -NBe \"SELECT CONCAT(DEFAULT_CHARACTER_SET_NAME, ' ', DEFAULT_COLLATION_NAME) "
        f"FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{schema}'\""
    )
    assert out == "utf8mb4 utf8mb4_unicode_ci"


@pytest.mark.parametrize("schema", SCHEMAS)
def test_user_logs_in_and_sees_only_its_schema(host, schema):
    with _connect(host, schema, _secret(f"{schema}_db_password")) as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        assert {row[0] for row in cur.fetchall()} - SYSTEM == {schema}
        cur.execute(f"CREATE TABLE `{schema}`.probe (id INT PRIMARY KEY)")
        cur.execute(f"DROP TABLE `{schema}`.probe")
        cur.execute("SHOW GRANTS")
        grants = sorted(row[0] for row in cur.fetchall())
    assert grants == sorted(
        [f"GRANT USAGE ON *.* TO `{schema}`@`%`", f"GRANT ALL PRIVILEGES ON `{schema}`.* TO `{schema}`@`%`"]
    )


@pytest.mark.parametrize(("user", "other"), [("mlflow", "airflow"), ("airflow", "mlflow")])
def test_user_cannot_reach_the_other_schema(host, user, other):
    with _connect(host, user, _secret(f"{user}_db_password")) as conn, conn.cursor() as cur:
        with pytest.raises(pymysql.err.OperationalError) as err:
            cur.execute(f"USE `{other}`")
    assert err.value.args[0] == 1044


@pytest.mark.parametrize("schema", SCHEMAS)
def test_wrong_password_rejected(host, schema):
    with pytest.raises(pymysql.err.OperationalError) as err:
        _connect(host, schema, _secret(f"{schema}_db_password") + "x")
    assert err.value.args[0] == 1045


@pytest.mark.parametrize("schema", SCHEMAS)
def test_users_authenticate_with_caching_sha2(host, schema):
    assert (
        host.check_output(f"mysql -NBe \"SELECT plugin FROM mysql.user WHERE user = '{schema}'\"")
        == "caching_sha2_password"
    )


def _grants(host, user):
    return host.check_output(f"mysql -NBe \"SHOW GRANTS FOR '{user}'@'%'\"")


def test_a_dropped_user_and_a_revoked_grant_are_back_after_the_next_converge(host):
    host.check_output("mysql -e \"DROP USER 'mlflow'@'%'; REVOKE ALL PRIVILEGES ON airflow.* FROM 'airflow'@'%'\"")
    assert "ALL PRIVILEGES" not in _grants(host, "airflow")
    with pytest.raises(pymysql.err.OperationalError):
        _connect(host, "mlflow", _secret("mlflow_db_password"))

    rc, changed, output = converge("--diff")
    assert rc == 0, output[-3000:]
    repaired = sorted(name for name in changed if name.startswith("mysql_schemas : "))
    assert repaired, f"the converge changed nothing in mysql_schemas: {sorted(changed)}"
    assert "GRANT ALL PRIVILEGES ON `airflow`.* TO `airflow`@`%`" in _grants(host, "airflow")
    for schema in SCHEMAS:
        test_user_logs_in_and_sees_only_its_schema(host, schema)
