"""PyMySQL, the driver of MLflow's MySQL URIs (pinned to the control node's
version, 1.2.4, in mlflow_pip_packages too), against the molecule probe's
fake MySQL server: given what SQLAlchemy's PyMySQL dialect makes of the URI
arguments the mlflow role adds (ssl_ca + ssl_check_hostname=true ->
ssl={"ca", "check_hostname"}), it logs in over TLS to a server whose
certificate chains to the CA and names the address, and never reaches the
login with a server that offers no TLS, a certificate of another CA, or one
for another address. The arguments the role does NOT use (ssl_verify_cert /
ssl_verify_identity next to that ssl dict) are shown to lose the CA."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pymysql
import pytest
from conftest import ROOT, load_plugin
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

probe = load_plugin(ROOT / "molecule" / "_shared" / "files" / "mysql_tls_probe.py")
LOGGED_IN = {"login-in-plaintext", "login-over-tls"}


def _ca(name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _server_context(tmp: Path, ca_key, ca_cert, address: str) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lab-db")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("lab-db"), x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (tmp / f"{address}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / f"{address}.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp / f"{address}.crt", tmp / f"{address}.key")
    return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _ca("platform CA")
    other_key, other_cert = _ca("another CA")
    (tmp / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return {
        "ca": str(tmp / "ca.pem"),
        "good": _server_context(tmp, ca_key, ca_cert, "127.0.0.1"),
        "other-ca": _server_context(tmp, other_key, other_cert, "127.0.0.1"),
        "other-address": _server_context(tmp, ca_key, ca_cert, "10.9.9.9"),
    }


def _events(server, **kwargs) -> list[str]:
    with pytest.raises(pymysql.err.OperationalError):  # the fake server never lets anyone in
        pymysql.connect(host="127.0.0.1", port=server.port, user="u", password="p", connect_timeout=5, **kwargs)
    return server.events


def _role_args(pki) -> dict:
    # What SQLAlchemy 2.1's PyMySQL dialect passes for ?ssl_ca=<ca>&ssl_check_hostname=true
    return {"ssl": {"ca": pki["ca"], "check_hostname": True}}


def test_logs_in_over_tls_to_the_platforms_server(pki):
    assert _events(probe.FakeServer(True, pki["good"]), **_role_args(pki)) == ["login-over-tls"]


@pytest.mark.parametrize("case", ["no-tls", "other-ca", "other-address"])
def test_never_reaches_the_login_otherwise(pki, case):
    server = probe.FakeServer(False) if case == "no-tls" else probe.FakeServer(True, pki[case])
    assert not LOGGED_IN & set(_events(server, **_role_args(pki))), server.events


def test_without_tls_arguments_pymysql_would_log_in_in_plaintext(pki):
    """The control: what the probe and these tests detect does happen without the role's arguments."""
    assert _events(probe.FakeServer(False)) == ["login-in-plaintext"]


def test_ssl_verify_arguments_next_to_the_ssl_dict_lose_the_ca(pki):
    """Why the role does not add ssl_verify_cert/ssl_verify_identity: PyMySQL then rebuilds
    its ssl settings without the CA, and a server of another CA is let in."""
    args = {**_role_args(pki), "ssl_verify_cert": "true", "ssl_verify_identity": "true"}
    conn = pymysql.connections.Connection(defer_connect=True, host="127.0.0.1", user="u", **args)
    context: ssl.SSLContext = getattr(conn, "ctx")  # noqa: B009 - not in PyMySQL's type stubs
    assert context.check_hostname is False
    assert not any(c["subject"] == ((("commonName", "platform CA"),),) for c in context.get_ca_certs())
