"""What the common role guarantees on every host."""

import os
from pathlib import Path

CONTROL_NODE_BUNDLE = Path(os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"))


def test_base_packages(host):
    for name in ("acl", "ca-certificates", "chrony", "python3", "python3-venv"):
        assert host.package(name).is_installed, name


def test_python_can_create_a_virtualenv(host):
    result = host.run(
        "python3 -m venv /tmp/venv-probe && /tmp/venv-probe/bin/python -c 'import ssl, sys; print(sys.prefix)'"
    )
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "/tmp/venv-probe"


def test_control_node_ca_bundle_is_trusted(host):
    installed = host.file("/usr/local/share/ca-certificates/oci-mlops-control-node-bundle.crt")
    assert installed.is_file
    assert installed.mode == 0o644
    assert installed.content_string.strip() == CONTROL_NODE_BUNDLE.read_text().strip()
    last_cert = CONTROL_NODE_BUNDLE.read_text().strip().split("-----BEGIN CERTIFICATE-----")[-1]
    assert last_cert in host.file("/etc/ssl/certs/ca-certificates.crt").content_string


def test_pypi_is_reachable_over_tls_with_the_system_trust_store(host):
    # Behind a TLS-intercepting proxy this only works with the proxy's CA trusted.
    probe = "import urllib.request; print(urllib.request.urlopen('https://pypi.org/simple/pip/', timeout=60).status)"
    result = host.run(f'python3 -c "{probe}"')
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "200"


def test_pip_uses_the_system_trust_store(host):
    conf = host.file("/etc/pip.conf")
    assert conf.mode == 0o644
    assert "cert = /etc/ssl/certs/ca-certificates.crt" in conf.content_string
    assert "cache-dir = /var/cache/pip" in conf.content_string


def test_journal_is_persistent(host):
    conf = host.file("/etc/systemd/journald.conf.d/50-oci-mlops.conf").content_string
    assert "Storage=persistent" in conf
    machine_id = host.file("/etc/machine-id").content_string.strip()
    assert host.file(f"/var/log/journal/{machine_id}/system.journal").exists


def test_chrony_configured_and_enabled(host):
    conf = host.file("/etc/chrony/chrony.conf").content_string
    assert "pool 2.debian.pool.ntp.org iburst" in conf
    assert host.service("chrony").is_enabled


def test_system_user_entry_point(host):
    user = host.user("edge-echo")
    assert user.exists
    assert user.shell == "/usr/sbin/nologin"
    assert user.home == "/var/lib/edge-echo"
    assert user.uid < 1000
    home = host.file("/var/lib/edge-echo")
    assert home.is_directory
    assert home.user == "edge-echo"
    assert home.mode == 0o750
