"""The zone opens exactly the declared ports, and they really are (un)reachable."""

import ipaddress
import os
import socket

import pytest
import testinfra

LAB_CIDR = os.environ["LAB_NETWORK_CIDR"]  # the scenario's network (its molecule.yml)
FIRST = "mol-fw-bookworm"  # first platform: the only client allowed on 3307
PORTS = (8765, 3307, 9999, 8766)


def _other(name):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}")


def _ipv4(host):
    return next(a for a in host.interface("eth0").addresses if ipaddress.ip_address(a).version == 4)


def _zone(host, what, permanent):
    flag = "--permanent " if permanent else ""
    return host.check_output(f"firewall-cmd {flag}--list-{what}")


def _connects(address, port):
    try:
        with socket.create_connection((address, port), timeout=3):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def address(host):
    """The host's address, with TCP listeners on the declared and an undeclared port."""
    for port in PORTS:
        host.run(f"systemctl stop probe-{port}.service")
        host.check_output(f"systemd-run --unit probe-{port} python3 -m http.server {port}")
    for port in PORTS:
        host.run(f"timeout 10 sh -c 'until ss -ltn | grep -q :{port}; do sleep 0.2; done'")
    yield _ipv4(host)
    for port in PORTS:
        host.run(f"systemctl stop probe-{port}.service")


def test_firewalld_running_and_enabled(host):
    assert host.service("firewalld").is_running
    assert host.service("firewalld").is_enabled
    assert host.check_output("firewall-cmd --get-default-zone") == "public"


@pytest.mark.parametrize("permanent", [False, True], ids=["runtime", "permanent"])
def test_zone_is_exactly_the_declarations(host, permanent):
    first_ip = _ipv4(_other(FIRST))
    assert _zone(host, "ports", permanent).split() == ["8765/tcp"]
    assert _zone(host, "services", permanent).split() == []
    assert set(_zone(host, "rich-rules", permanent).splitlines()) == {
        f'rule family="ipv4" source address="{LAB_CIDR}" port port="22" protocol="tcp" accept',
        f'rule family="ipv4" source address="{first_ip}/32" port port="3307" protocol="tcp" accept',
    }


def test_only_the_kept_declarations_remain(host):
    # side_effect.yml leaves moltest-gone.json (port 8766) of a service no longer on the host:
    # the converge retracts it (file removed; its port is checked closed above).
    listing = host.check_output("ls /etc/oci-mlops/firewalld.d").split()
    assert sorted(listing) == ["moltest-db.json", "moltest-web.json"]


def test_declared_port_reachable_undeclared_blocked(address):
    assert _connects(address, 8765)
    assert not _connects(address, 9999)
    assert not _connects(address, 8766)  # retracted declaration (side_effect.yml)
    # 3307 is open to the first lab host only, not to the Docker host.
    assert not _connects(address, 3307)


def test_source_restricted_port_open_to_its_client(address):
    probe = f"import socket; socket.create_connection(('{address}', 3307), timeout=3); print('open')"
    result = _other(FIRST).run(f'python3 -c "{probe}"')
    assert result.stdout.strip() == "open", result.stderr


def test_name_resolution_survives_firewalld_restarts(host):
    # Lab hosts resolve names through Docker's embedded DNS, whose NAT rules
    # firewalld < 2.0 flushes at start; the lab image puts them back.
    host.check_output("systemctl restart firewalld")
    assert host.run("getent hosts pypi.org").rc == 0
