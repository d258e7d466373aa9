"""The edge as a client sees it, from the control node: HTTPS with the lab CA
at the edge host's address on the scenario network (nothing is published
until the edge is in the topology), HTTP redirected, the security headers,
TLS 1.2/1.3 only, body caps, the login rate limit; and on the host, nginx
under its hardened unit, logging to the journal, reloaded without a restart.
The probes are edge_probe's (also used by tests/unit/test_edge.py against a
local nginx)."""

from __future__ import annotations

import ipaddress
import json
import os
import ssl
import time
import uuid
from pathlib import Path

import pytest
from edge_probe import Edge

LAB_CIDR = os.environ["LAB_NETWORK_CIDR"]  # the scenario's network (its molecule.yml)
CA = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "lab-ca" / "lab-ca.crt"
DROPIN = "/etc/systemd/system/nginx.service.d/oci-mlops-edge.conf"


@pytest.fixture(scope="module")
def edge(host) -> Edge:
    address = next(a for a in host.interface("eth0").addresses if ipaddress.ip_address(a).version == 4)
    return Edge(address, str(CA))


def _headers(echo: bytes) -> dict[str, str]:
    return {k.lower(): v for k, v in json.loads(echo)["headers"].items()}


def test_https_with_the_lab_ca_keeps_or_strips_the_prefix(edge):
    kept = edge.https("GET", "/mlflow/ajax-api/2.0/mlflow/experiments/search?max_results=1")
    assert kept.status == 200, kept.body[:300]
    assert json.loads(kept.body)["path"] == "/mlflow/ajax-api/2.0/mlflow/experiments/search?max_results=1"
    forwarded = _headers(kept.body)
    assert forwarded["x-forwarded-proto"] == "https"
    assert forwarded["x-forwarded-prefix"] == "/mlflow"
    assert forwarded["host"] == "localhost"
    assert ipaddress.ip_address(forwarded["x-real-ip"]) in ipaddress.ip_network(LAB_CIDR)
    stripped = edge.https("GET", "/api/docs")
    assert json.loads(stripped.body)["path"] == "/docs"
    assert _headers(stripped.body)["x-forwarded-prefix"] == "/api"


def test_websocket_upgrade_is_forwarded_on_its_route_only(edge):
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade"}
    dashboard = _headers(edge.https("GET", "/dashboard/_stcore/stream", headers=upgrade).body)
    assert dashboard.get("upgrade") == "websocket" and dashboard.get("connection") == "upgrade"
    mlflow = _headers(edge.https("GET", "/mlflow/", headers=upgrade).body)
    assert "upgrade" not in mlflow


def test_landing_redirect_and_unknown_route(edge):
    landing = edge.https("GET", "/")
    assert landing.status == 302 and landing.headers["location"] == "/mlflow/"
    assert edge.https("GET", "/nowhere/").status == 404
    assert edge.https("GET", "/mlflowx").status == 404


def test_http_redirects_to_https_keeping_the_path(edge):
    redirect = edge.http("GET", "/airflow/dags?page=2")
    assert redirect.status == 301
    assert redirect.headers["location"] == "https://localhost/airflow/dags?page=2"


def test_acme_challenges_are_served_over_http(host, edge):
    token = uuid.uuid4().hex
    challenge = f"/var/www/oci-mlops-acme/.well-known/acme-challenge/{token}"
    host.run(f"mkdir -p {os.path.dirname(challenge)} && printf acme-{token} > {challenge} && chmod -R a+rX /var/www")
    try:
        served = edge.http("GET", f"/.well-known/acme-challenge/{token}")
        assert served.status == 200 and served.body == f"acme-{token}".encode()
    finally:
        host.run(f"rm -f {challenge}")


@pytest.mark.parametrize("path", ["/", "/mlflow/", "/nowhere/"])
def test_security_headers_on_every_response(edge, path):
    resp = edge.https("GET", path)
    assert resp.headers["strict-transport-security"] == "max-age=31536000"
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["x-frame-options"] == "SAMEORIGIN" and resp.header_count("x-frame-options") == 1
    assert resp.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert resp.headers.get("server") == "nginx"  # no version
    assert "x-powered-by" not in resp.headers


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_old_tls_refused(edge, version):
    with pytest.raises(ssl.SSLError) as refused:
        edge.handshake(getattr(ssl.TLSVersion, version))
    # The server's protocol-version alert (this client offered the version).
    assert "ALERT_PROTOCOL_VERSION" in str(refused.value), refused.value


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_modern_tls_accepted(edge, version):
    assert edge.handshake(getattr(ssl.TLSVersion, version)) == version.replace("_", ".")


@pytest.mark.parametrize("ciphers", ["AES128-SHA", "ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA"])
def test_weak_tls12_ciphers_refused(edge, ciphers):
    with pytest.raises(ssl.SSLError) as refused:
        edge.handshake(ssl.TLSVersion.TLSv1_2, ciphers=ciphers)
    assert "HANDSHAKE_FAILURE" in str(refused.value) or "NO_SHARED_CIPHER" in str(refused.value), refused.value


def test_body_over_the_route_cap_gets_413(edge):
    assert edge.https("POST", "/mlflow/upload", body=b"x" * (1024 * 1024 + 10)).status == 200  # mlflow: 2m
    assert edge.https("POST", "/mlflow/upload", body=b"x" * (2 * 1024 * 1024 + 10)).status == 413
    assert edge.https("POST", "/airflow/api/v2/x", body=b"x" * (1024 * 1024 + 10)).status == 413  # default 1m


def test_login_rate_limit_gives_429_after_the_burst(host, edge):
    statuses = [edge.https("POST", "/airflow/auth/token", body=b"{}").status for _ in range(10)]
    assert statuses[:4] == [200] * 4, statuses  # one at the rate + a burst of 3
    assert 429 in statuses, statuses
    assert {edge.https("GET", "/airflow/home").status for _ in range(10)} == {200}  # other paths unlimited
    # nginx's error log (stderr) is in the journal under the unit.
    for _ in range(20):
        if "limiting requests" in host.run("journalctl -u nginx --no-pager -n 200").stdout:
            break
        time.sleep(0.5)
    else:
        pytest.fail("nginx's 'limiting requests' message is not in journalctl -u nginx")


def test_access_log_in_the_journal(host, edge):
    marker = uuid.uuid4().hex
    edge.https("GET", f"/mlflow/{marker}")
    for _ in range(20):
        if marker in host.run("journalctl -t nginx_edge --no-pager -n 200").stdout:
            return
        time.sleep(0.5)
    pytest.fail("the access log line is not in journalctl -t nginx_edge")


def test_nginx_runs_under_the_hardened_dropin(host):
    nginx = host.service("nginx")
    assert nginx.is_running and nginx.is_enabled
    props = dict(
        line.split("=", 1)
        for line in host.check_output(
            "systemctl show nginx -p ProtectSystem -p ProtectHome -p PrivateTmp -p PrivateDevices"
            " -p NoNewPrivileges -p CapabilityBoundingSet -p DropInPaths -p PIDFile -p RestrictSUIDSGID"
            " -p MemoryMax -p TasksMax"
        ).splitlines()
    )
    assert (props["MemoryMax"], props["TasksMax"]) == (str(512 * 1024**2), "64")  # edge_memory_max / _tasks_max
    assert props["ProtectSystem"] == "strict"
    assert props["ProtectHome"] == "yes" and props["PrivateTmp"] == "yes" and props["PrivateDevices"] == "yes"
    assert props["NoNewPrivileges"] == "yes" and props["RestrictSUIDSGID"] == "yes"
    assert set(props["CapabilityBoundingSet"].split()) == {
        "cap_chown",
        "cap_dac_override",
        "cap_kill",
        "cap_setgid",
        "cap_setuid",
        "cap_net_bind_service",
    }
    assert DROPIN in props["DropInPaths"].split()
    assert host.check_output("ls /etc/systemd/system/nginx.service.d").split() == ["oci-mlops-edge.conf"]
    assert props["PIDFile"] == "/run/nginx/nginx.pid"
    # Workers run as the unprivileged user, the master as root.
    users = set(host.check_output("ps -o user= -C nginx").split())
    assert users == {"root", "www-data"}, users


def test_key_and_certificate_files(host):
    key = host.file("/etc/nginx/tls/edge.key")
    assert key.user == "root" and key.group == "root" and key.mode == 0o600
    assert host.file("/etc/nginx/tls").mode == 0o750
    assert host.file("/etc/nginx/sites-enabled/default").exists is False


def test_reload_keeps_the_master_process(host, edge):
    before = host.check_output("systemctl show -p MainPID --value nginx")
    host.check_output("systemctl reload nginx")
    time.sleep(1)
    assert host.check_output("systemctl show -p MainPID --value nginx") == before
    assert edge.https("GET", "/mlflow/").status == 200


def test_ports_open_to_the_lab_network_only(host):
    rules = host.check_output("firewall-cmd --list-rich-rules").splitlines()
    for port in (443, 80):
        assert f'rule family="ipv4" source address="{LAB_CIDR}" port port="{port}" protocol="tcp" accept' in rules
