"""A real MySQL Server (not MariaDB), configured for Airflow and MLflow, root by socket only."""

import datetime as dt
import ipaddress
import os
import secrets
import time
from pathlib import Path

import pymysql
import pytest
import testinfra
import testinfra.utils.ansible_runner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dbkit import converge

# The scenario's db host (the db host as site.yml converges it: groups db and objectstore).
testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("db")

LAB_CIDR = os.environ["LAB_NETWORK_CIDR"]  # the scenario's network (its molecule.yml)


def _sql(host, query):
    return host.check_output(f'mysql -NBe "{query}"')


ADMIN_CNF = "/etc/oci-mlops/mysql-admin.cnf"


def _admin(host, query):
    """The role's login: the administrative interface, with the option file the role writes for root."""
    return host.check_output(f'mysql --defaults-extra-file={ADMIN_CNF} -NBe "{query}"')


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


def test_the_roles_administrative_account_is_on_loopback_only(host):
    rows = _sql(host, "SELECT CONCAT(host, ':', plugin) FROM mysql.user WHERE user = 'oci_mlops_admin'")
    assert rows == "127.0.0.1:caching_sha2_password"
    grants = _sql(host, "SHOW GRANTS FOR 'oci_mlops_admin'@'127.0.0.1'")
    assert "SERVICE_CONNECTION_ADMIN" in grants and "WITH GRANT OPTION" in grants
    option_file = host.file(ADMIN_CNF)
    assert (option_file.user, option_file.group, option_file.mode) == ("root", "root", 0o600)


def test_administrative_interface_listens_on_loopback_only(host):
    assert _sql(host, "SELECT @@admin_address, @@admin_port, @@create_admin_listener_thread") == "127.0.0.1\t33062\t1"
    assert host.socket("tcp://127.0.0.1:33062").is_listening
    assert not host.socket(f"tcp://{_ipv4(host)}:33062").is_listening
    assert "33062/tcp" not in host.check_output("firewall-cmd --list-ports").split()
    assert "33062" not in host.check_output("firewall-cmd --list-rich-rules")
    # over TLS (require_secure_transport applies there too), the chain verified against the platform's CA
    assert _admin(host, "SELECT CURRENT_USER()") == "oci_mlops_admin@127.0.0.1"
    assert _admin(host, "SHOW SESSION STATUS LIKE 'Ssl_version'").split("\t")[1] in ("TLSv1.2", "TLSv1.3")


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


# --- Settings drift (SET PERSIST, SET GLOBAL) and a saturated server ----------
# Each case is injected by hand, reported by a check-mode run of the scenario's
# converge.yml (task and diff) and repaired by one converge; the last run
# reports changed=0.
SETTINGS_TASK = "mysql_server : Compare the effective settings with oci-mlops.cnf, nothing persisted"
RESTART_TASK = "mysql_server : Restart mysqld to drop what only a start resets"
# A throwaway account that root (auth_socket AS 'root') uses to fill the server.
FILLER = "mysql-filler"
FILLER_SCRIPT = """
import pathlib, time, pymysql
conns = []
while True:
    try:
        conns.append(pymysql.connect(unix_socket="/run/mysqld/mysqld.sock", user="filler"))
    except pymysql.err.OperationalError as exc:
        if exc.args[0] != 1040:
            raise
        break
# root takes the one connection kept beyond max_connections for CONNECTION_ADMIN
conns.append(pymysql.connect(unix_socket="/run/mysqld/mysqld.sock", user="root"))
pathlib.Path("/run/mysql-filler.ready").write_text(str(len(conns)))
time.sleep(600)
"""


def _persisted(host) -> str:
    names = "SELECT GROUP_CONCAT(VARIABLE_NAME ORDER BY VARIABLE_NAME) FROM performance_schema.persisted_variables"
    return _sql(host, names)


def test_persisted_settings_are_reported_and_repaired(host):
    assert _persisted(host) == "NULL", "something is persisted on the converged server"
    # a managed variable, and one oci-mlops.cnf does not set (only a restart returns it to its default)
    _sql(host, "SET PERSIST max_connections = 123; SET PERSIST wait_timeout = 600")
    assert _persisted(host) == "max_connections,wait_timeout"

    rc, changed, output = converge("--check", "--diff")
    assert rc == 0, output[-3000:]
    assert SETTINGS_TASK in changed, f"check mode did not report the persisted settings: {sorted(changed)}"
    drift = changed[SETTINGS_TASK]["diff"]
    assert "mysqld-auto.cnf: max_connections = 123" in drift["before"] and "max_connections = 123" in drift["before"]
    assert "max_connections = 300 (oci-mlops.cnf)" in drift["after"]
    assert "mysqld-auto.cnf: wait_timeout = 600" in drift["before"] and "wait_timeout: not persisted" in drift["after"]
    assert RESTART_TASK in changed
    assert set(changed) <= {SETTINGS_TASK, RESTART_TASK}, sorted(changed)
    assert _persisted(host) == "max_connections,wait_timeout", "check mode changed the server"

    rc, changed, output = converge("--diff")
    assert rc == 0, output[-3000:]
    assert {SETTINGS_TASK, RESTART_TASK} <= set(changed), sorted(changed)
    assert _persisted(host) == "NULL"
    assert _sql(host, "SELECT @@GLOBAL.max_connections, @@GLOBAL.wait_timeout") == "300\t28800"
    assert not host.file("/var/lib/mysql/mysqld-auto.cnf").contains("max_connections")


# The platform's MySQL clients on the scenario's other hosts, by group: stopped
# while the server is filled (their pools take and free connections at any
# time, so a slot could open under the test's feet), started again after.
CLIENT_UNITS = {
    "mlflow": ("mlflow",),
    "airflow": tuple(f"airflow-{s}" for s in ("api-server", "scheduler", "dag-processor", "triggerer")),
}


@pytest.fixture
def clients_stopped():
    runner = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
    stopped = []
    for group, units in CLIENT_UNITS.items():
        for name in runner.get_hosts(group):
            peer = testinfra.get_host(f"ansible://{name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])
            peer.check_output(f"systemctl stop {' '.join(units)}")
            stopped.append((peer, units))
    yield
    for peer, units in stopped:
        peer.check_output(f"systemctl start {' '.join(units)}")


@pytest.fixture
def saturated(host, clients_stopped):
    """max_connections lowered at runtime and filled by an ordinary account; a root session holds the spare one."""
    host.run("rm -f /run/mysql-filler.ready")
    _sql(host, "CREATE USER IF NOT EXISTS 'filler'@'localhost' IDENTIFIED WITH auth_socket AS 'root'")
    _sql(host, "SET GLOBAL max_connections = 12")
    host.check_output(f"systemd-run --unit={FILLER} --collect python3 -c '{FILLER_SCRIPT}'")
    deadline = time.monotonic() + 60
    while not host.file("/run/mysql-filler.ready").exists:
        assert time.monotonic() < deadline, host.run(f"journalctl -u {FILLER} --no-pager -n 30").stdout
        time.sleep(1)
    yield
    host.run(f"systemctl stop {FILLER}")
    _sql(host, "DROP USER IF EXISTS 'filler'@'localhost'")


def test_a_saturated_server_still_takes_the_roles_login_and_theconverge(host, saturated):
    refused = host.run("mysql -u filler -NBe 'SELECT 1'")
    assert refused.rc != 0 and "1040" in refused.stderr, refused.stderr  # Too many connections
    # root over the socket has no room left: the spare connection is taken
    refused = host.run("mysql -NBe 'SELECT 1'")
    assert refused.rc != 0 and "1040" in refused.stderr, refused.stderr
    # the administrative interface is not counted against max_connections
    assert _admin(host, "SELECT CURRENT_USER(), @@GLOBAL.max_connections") == "oci_mlops_admin@127.0.0.1\t12"

    rc, changed, output = converge("--diff")
    assert rc == 0, output[-3000:]
    assert SETTINGS_TASK in changed, sorted(changed)
    assert "max_connections = 12 (set at runtime)" in changed[SETTINGS_TASK]["diff"]["before"]
    assert _admin(host, "SELECT @@GLOBAL.max_connections") == "300"
    assert _sql(host, "SELECT @@GLOBAL.max_connections") == "300"  # root has room again


def test_next_converge_reports_no_change(host):
    rc, changed, output = converge()
    assert rc == 0, output[-3000:]
    assert not changed, sorted(changed)
    assert _persisted(host) == "NULL"
