"""A real MySQL Server (not MariaDB), configured for Airflow and MLflow, root by socket only."""

import ipaddress
import os

import pymysql
import pytest

LAB_CIDR = os.environ["LAB_NETWORK_CIDR"]  # the scenario's network (its molecule.yml)


def _sql(host, query):
    return host.check_output(f'mysql -NBe "{query}"')


def _ipv4(host):
    return next(a for a in host.interface("eth0").addresses if ipaddress.ip_address(a).version == 4)


def test_service_active_and_enabled(host):
    service = host.service("mysql")
    assert service.is_running
    assert service.is_enabled


def test_it_is_mysql_not_mariadb(host):
    version, comment = _sql(host, "SELECT VERSION(), @@version_comment").split("\t")
    assert int(version.split(".")[0]) >= 8, version
    assert "mariadb" not in (version + comment).lower()
    assert not host.package("mariadb-server").is_installed


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("character_set_server", "utf8mb4"),
        ("collation_server", "utf8mb4_unicode_ci"),
        ("explicit_defaults_for_timestamp", "1"),
        ("log_bin_trust_function_creators", "1"),
        ("port", "3306"),
    ],
)
def test_settings_airflow_and_mlflow_need(host, variable, value):
    assert _sql(host, f"SELECT @@{variable}") == value


def test_listens_on_the_private_address_only(host):
    assert _sql(host, "SELECT @@bind_address") == _ipv4(host)
    assert host.socket(f"tcp://{_ipv4(host)}:3306").is_listening
    assert not host.socket("tcp://0.0.0.0:3306").is_listening


def test_tls_is_offered(host):
    enabled = _sql(
        host,
        "SELECT VALUE FROM performance_schema.tls_channel_status WHERE CHANNEL = 'mysql_main' AND PROPERTY = 'Enabled'",
    )
    assert enabled == "Yes"


def test_root_only_by_local_socket(host):
    assert _sql(host, "SELECT CONCAT(host, ':', plugin) FROM mysql.user WHERE user = 'root'") == "localhost:auth_socket"
    assert _sql(host, "SELECT COUNT(*) FROM mysql.user WHERE user = ''") == "0"
    # and over TCP (from the Docker host, inside the allowed CIDR) root gets nowhere
    with pytest.raises(pymysql.err.OperationalError) as err:
        pymysql.connect(host=_ipv4(host), user="root", password="", connect_timeout=5)
    assert err.value.args[0] in (1045, 1130), err.value


def test_no_test_database(host):
    assert _sql(host, "SHOW DATABASES LIKE 'test'") == ""


def test_firewall_opens_3306_to_the_client_cidr_only(host):
    rules = host.check_output("firewall-cmd --list-rich-rules").splitlines()
    assert f'rule family="ipv4" source address="{LAB_CIDR}" port port="3306" protocol="tcp" accept' in rules
    assert "3306/tcp" not in host.check_output("firewall-cmd --list-ports").split()
