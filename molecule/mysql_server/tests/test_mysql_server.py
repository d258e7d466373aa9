"""A real MySQL Server (not MariaDB), configured for Airflow and MLflow, root by socket only."""

import datetime as dt
import ipaddress
import os
import secrets
from pathlib import Path

import pymysql
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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


def test_tls_is_offered_with_the_platforms_certificate(host):
    assert _sql(host, "SELECT @@tls_version") == "TLSv1.2,TLSv1.3"
    assert _sql(host, "SELECT @@require_secure_transport") == "1"
    assert _sql(host, "SELECT @@ssl_ca") == "/etc/mysql/tls/ca.pem"
    assert _sql(host, "SELECT @@ssl_cert") == "/etc/mysql/tls/server-cert.pem"
    key = host.file("/etc/mysql/tls/server-key.pem")
    assert (key.user, key.group, key.mode) == ("root", "mysql", 0o640)


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


# --- TLS from another host (the control node, over the lab network) ----------
LAB_CA = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent / ".secrets" / "lab-ca" / "lab-ca.crt"


@pytest.fixture(scope="module")
def probe_user(host):
    """A throwaway account that may log in over TCP (root may not)."""
    password = secrets.token_urlsafe(24)
    _sql(host, f"CREATE USER IF NOT EXISTS 'tlsprobe'@'%' IDENTIFIED BY '{password}'")
    _sql(host, f"ALTER USER 'tlsprobe'@'%' IDENTIFIED BY '{password}'")
    yield "tlsprobe", password
    _sql(host, "DROP USER IF EXISTS 'tlsprobe'@'%'")


def _other_ca(tmp_path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "another CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "other-ca.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_plaintext_from_another_host_is_refused(host, probe_user):
    with pytest.raises(pymysql.err.OperationalError) as err:
        pymysql.connect(
            host=_ipv4(host), user=probe_user[0], password=probe_user[1], ssl_disabled=True, connect_timeout=5
        )
    assert err.value.args[0] == 3159, err.value  # ER_SECURE_TRANSPORT_REQUIRED


def test_tls_verified_with_the_lab_ca_from_another_host(host, probe_user):
    """Chain and address verified (ssl_verify_identity: the certificate names the db host's private address)."""
    conn = pymysql.connect(
        host=_ipv4(host),
        user=probe_user[0],
        password=probe_user[1],
        ssl_ca=str(LAB_CA),
        ssl_verify_cert=True,
        ssl_verify_identity=True,
        connect_timeout=5,
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
            row = cur.fetchone()
            assert row is not None and row[1] in ("TLSv1.2", "TLSv1.3"), row
    finally:
        conn.close()


def test_tls_with_another_ca_fails(host, probe_user, tmp_path):
    with pytest.raises(pymysql.err.OperationalError) as err:
        pymysql.connect(
            host=_ipv4(host),
            user=probe_user[0],
            password=probe_user[1],
            ssl_ca=str(_other_ca(tmp_path)),
            ssl_verify_cert=True,
            ssl_verify_identity=True,
            connect_timeout=5,
        )
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value), err.value
