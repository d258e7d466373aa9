"""TLS to MySQL as the platform renders it (Ansible itself, conftest.ansible_debug,
on a fake OCI inventory): every client's MySQL URI or configuration names the
CA file and turns verification on, the server requires TLS 1.2+, and the CA
is the operator's file next to the inventory (OCI) or the lab CA."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse

import pytest
from conftest import OCI_INFRA, ROLES, ROOT, ansible_debug
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOSTS = {"mlflow": "10.0.1.10", "airflow": "10.0.1.11"}
AIRFLOW_MODULE = ROLES / "airflow" / "templates" / "oci_mlops_db_tls.py.j2"
MLFLOW_ENV = ROLES / "mlflow" / "templates" / "mlflow.env.j2"
BASIC_AUTH = ROLES / "mlflow" / "templates" / "basic_auth.ini.j2"


def _ca_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "DB System CA (test)")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("tls")
    ca = _ca_pem()
    (tmp / "db-ca.pem").write_text(ca)  # the operator's file next to the OCI inventory
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "local",
                **OCI_INFRA,
                # the operator's vault on OCI: the S3 pair is never generated there (mlflow.env reads it)
                "vault_s3_access_key": "ocid1.credential.oc1..test",
                "vault_s3_secret_key": "issued-by-oci",
            },
            "children": {group: {"hosts": {f"{group}-1": {"private_ip": ip}}} for group, ip in HOSTS.items()},
        }
    }
    (tmp / "hosts.json").write_text(json.dumps(inventory))
    names = [
        "mlflow_backend_store_uri_tls",
        "mlflow_auth_database_uri_tls",
        "mlflow_db_ca_certificate",
        "airflow_database_url_sync",
        "airflow_database_url_async",
        "airflow_config",
        "airflow_environment",
        "airflow_credentials",
        "airflow_credentials_dir",
        "airflow_db_ca_certificate",
        "mysql_schemas_ca_certificate",
        "mysql_server_tls_ca_certificate",
    ]
    templates = {"basic_auth": BASIC_AUTH, "airflow_module": AIRFLOW_MODULE, "mlflow_env": MLFLOW_ENV}
    expr = ", ".join(
        [f"'{n}': {n}" for n in names] + [f"'{k}': lookup('template', '{p}')" for k, p in templates.items()]
    )
    result = ansible_debug(tmp / "hosts.json", "mlflow-1", "msg={{ {" + expr + "} }}", OCI_MLOPS_SECRETS_DIR=str(tmp))
    return {**result["msg"], "ca": ca}


def _query(uri: str) -> dict:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(uri).query))


def test_the_ca_every_client_verifies_with_is_the_operators_file(rendered):
    for name in ("mlflow_db_ca_certificate", "airflow_db_ca_certificate", "mysql_schemas_ca_certificate"):
        assert rendered[name].strip() == rendered["ca"].strip(), name
    assert rendered["mysql_server_tls_ca_certificate"].strip() == rendered["ca"].strip()


@pytest.mark.parametrize("name", ["mlflow_backend_store_uri_tls", "mlflow_auth_database_uri_tls"])
def test_mlflow_uris_verify_the_server_against_the_ca_file(rendered, name):
    uri = rendered[name]
    assert uri.startswith("mysql+pymysql://mlflow:") and f"@{OCI_INFRA['infra_db_endpoint']}:" in uri
    query = _query(uri)
    # ssl_ca + ssl_check_hostname: SQLAlchemy hands PyMySQL ssl={ca, check_hostname} (TLS required, chain
    # against this CA only, name/address checked). Not ssl_verify_*: they make PyMySQL drop the CA.
    assert query == {"charset": "utf8mb4", "ssl_ca": "/etc/mlflow/mysql-ca.pem", "ssl_check_hostname": "true"}


def test_mlflow_schema_helper_and_basic_auth_use_the_verified_uris(rendered):
    # The schema helper runs with the server's own environment file (systemd-run
    # EnvironmentFile=, no secret on a command line) and reads the auth URI from the ini.
    env = dict(line.split("=", 1) for line in rendered["mlflow_env"].splitlines() if "=" in line)
    assert env["MLFLOW_BACKEND_STORE_URI"].strip("'\"") == rendered["mlflow_backend_store_uri_tls"]
    line = next(x for x in rendered["basic_auth"].splitlines() if x.startswith("database_uri = "))
    assert line.replace("%%", "%") == "database_uri = " + rendered["mlflow_auth_database_uri_tls"]


def test_airflow_sync_engine_requires_verify_identity(rendered):
    query = _query(rendered["airflow_database_url_sync"])
    assert rendered["airflow_database_url_sync"].startswith("mysql+mysqldb://airflow:")
    assert query == {"charset": "utf8mb4", "ssl_mode": "VERIFY_IDENTITY", "ssl_ca": "/etc/airflow/mysql-ca.pem"}


def test_airflow_async_engine_is_set_explicitly_with_verifying_connect_args(rendered):
    url = rendered["airflow_database_url_async"]
    assert url.startswith("mysql+aiomysql://airflow:") and _query(url) == {"charset": "utf8mb4"}
    # Both URLs reach Airflow through credential files and airflow.cfg's `_cmd`
    # options, never through the environment the tasks inherit (issue #15 point 3).
    credentials, directory = rendered["airflow_credentials"], rendered["airflow_credentials_dir"]
    assert credentials["airflow_db_url"] == rendered["airflow_database_url_sync"]
    assert credentials["airflow_db_url_async"] == url
    assert not [k for k in rendered["airflow_environment"] if k.startswith("AIRFLOW__")]
    assert rendered["airflow_config"]["database"] == {
        "sql_alchemy_connect_args_async": "oci_mlops_db_tls.CONNECT_ARGS_ASYNC",
        "sql_alchemy_conn_cmd": f"/bin/cat {directory}/airflow_db_url",
        "sql_alchemy_conn_async_cmd": f"/bin/cat {directory}/airflow_db_url_async",
    }


def test_airflow_async_module_verifies_and_refuses_plaintext(rendered):
    source = rendered["airflow_module"]
    compile(source, "oci_mlops_db_tls.py", "exec")
    assert 'CA_FILE = "/etc/airflow/mysql-ca.pem"' in source
    assert "ssl.create_default_context(cafile=CA_FILE)" in source
    assert "ssl.TLSVersion.TLSv1_2" in source
    assert "not self.server_capabilities & CLIENT.SSL" in source
    assert 'CONNECT_ARGS_ASYNC = {"ssl": _context(), "async_creator_fn": connect}' in source


def test_the_server_requires_tls_12_and_13_only():
    defaults = (ROLES / "mysql_server" / "defaults" / "main.yml").read_text()
    assert "mysql_server_require_secure_transport: true" in defaults
    assert "mysql_server_tls_versions: [TLSv1.2, TLSv1.3]" in defaults
    cnf = (ROLES / "mysql_server" / "templates" / "oci-mlops.cnf.j2").read_text()
    for key in ("ssl_ca", "ssl_cert", "ssl_key", "tls_version", "require_secure_transport"):
        assert f"\n{key} = " in cnf, key


def test_the_lab_ca_issues_mysqls_certificate_for_the_db_hosts_name_and_address():
    lab = (ROOT / "inventory" / "lab" / "group_vars" / "all" / "lab.yml").read_text()
    assert 'oci_mlops_db_ca_file: "{{ oci_mlops_lab_ca_dir }}/lab-ca.crt"' in lab
    assert "'dns': [groups['db'][0]], 'ip': [hostvars[groups['db'][0]]['common_private_address']]" in lab


def test_no_platform_uri_carries_its_own_ssl_arguments():
    """The roles add the TLS arguments (and refuse URIs that carry some: a second ssl_ca would be a list)."""
    for name in ("mlflow.yml", "airflow.yml"):
        lines = (ROLES / "platform_defaults" / "defaults" / "main" / name).read_text().splitlines()
        assert [line for line in lines if "mysql+" in line and "ssl_" in line] == [], name
