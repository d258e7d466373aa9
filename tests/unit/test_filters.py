"""The roles' filter plugins."""

import pytest
from ansible.errors import AnsibleFilterError

from conftest import ROLES, load_plugin

lab = load_plugin(ROLES / "lab_containers" / "filter_plugins" / "lab_cgroup.py")
fw = load_plugin(ROLES / "firewalld" / "filter_plugins" / "firewalld_desired.py")

SSH_LAB = 'rule family="ipv4" source address="172.28.52.0/24" port port="22" protocol="tcp" accept'


@pytest.mark.parametrize(
    ("layout", "systemd", "volume"),
    [
        ("unified", 252, "/sys/fs/cgroup:/sys/fs/cgroup:rw"),
        ("unified", 262, "/sys/fs/cgroup:/sys/fs/cgroup:rw"),
        ("hybrid", 252, "/sys/fs/cgroup:/sys/fs/cgroup:rw"),
        ("hybrid", 257, "/sys/fs/cgroup:/sys/fs/cgroup:rw"),
        ("hybrid", 258, "/sys/fs/cgroup/unified:/sys/fs/cgroup:rw"),
        ("hybrid", "262", "/sys/fs/cgroup/unified:/sys/fs/cgroup:rw"),
        ("legacy", 252, "/sys/fs/cgroup:/sys/fs/cgroup:rw"),
    ],
)
def test_cgroup_volume(layout, systemd, volume):
    assert lab.lab_cgroup_volume(layout, systemd) == volume


def test_cgroup_v1_only_host_cannot_boot_new_systemd():
    with pytest.raises(AnsibleFilterError, match="needs cgroup v2"):
        lab.lab_cgroup_volume("legacy", 258)


@pytest.mark.parametrize(("layout", "systemd"), [("hybrid", "n/a"), ("weird", 252)])
def test_cgroup_volume_rejects_nonsense(layout, systemd):
    with pytest.raises(AnsibleFilterError):
        lab.lab_cgroup_volume(layout, systemd)


def test_image_systemd_versions_from_labels_or_default():
    results = [
        {"item": "oci-mlops-lab/debian:sid", "images": [{"Config": {"Labels": {"org.oci-mlops.systemd-version": "262"}}}]},
        {"item": "oraclelinux:9", "images": [{"Config": {"Labels": None}}]},
    ]
    assert lab.lab_image_systemd_versions(results, 252) == {"oci-mlops-lab/debian:sid": 262, "oraclelinux:9": 252}


def test_ssh_only_from_its_sources():
    wanted = fw.firewalld_desired({}, 22, ["172.28.52.0/24"], [])
    assert wanted == {"ports": [], "rich_rules": [SSH_LAB], "services": []}


def test_empty_ssh_sources_close_ssh():
    assert fw.firewalld_desired({}, 22, [], []) == {"ports": [], "rich_rules": [], "services": []}


def test_declarations_become_ports_and_rich_rules():
    declarations = {
        "mlflow": [{"port": 5000}],
        "api": [{"port": 8000, "protocol": "tcp"}, {"port": 8501, "sources": []}],
        "mysql": [{"port": 3306, "sources": ["10.0.1.0/24", "fd00::/64"]}],
        "dup": [{"port": 5000, "protocol": "tcp"}],
    }
    wanted = fw.firewalld_desired(declarations, 2222, ["10.0.0.0/16"], ["dhcpv6-client"])
    assert wanted["ports"] == ["5000/tcp", "8000/tcp", "8501/tcp"]
    assert wanted["services"] == ["dhcpv6-client"]
    assert wanted["rich_rules"] == sorted(
        [
            'rule family="ipv4" source address="10.0.0.0/16" port port="2222" protocol="tcp" accept',
            'rule family="ipv4" source address="10.0.1.0/24" port port="3306" protocol="tcp" accept',
            'rule family="ipv6" source address="fd00::/64" port port="3306" protocol="tcp" accept',
        ]
    )


def test_sources_are_normalized_like_firewalld_prints_them():
    wanted = fw.firewalld_desired({"x": [{"port": 1, "sources": ["10.0.1.7/24"]}]}, 22, [], [])
    assert wanted["rich_rules"] == ['rule family="ipv4" source address="10.0.1.0/24" port port="1" protocol="tcp" accept']


@pytest.mark.parametrize(
    ("declarations", "message"),
    [
        ({"svc": [{"port": 0}]}, "out of range"),
        ({"svc": [{"port": 70000}]}, "out of range"),
        ({"svc": [{"port": "http"}]}, "numeric port"),
        ({"svc": [{}]}, "numeric port"),
        ({"svc": [{"port": 80, "protocol": "icmp"}]}, "not tcp or udp"),
        ({"svc": [{"port": 80, "sources": ["lab-network"]}]}, "not a CIDR"),
        ({"svc": {"port": 80}}, "not a list"),
    ],
)
def test_bad_declarations_are_refused_by_name(declarations, message):
    with pytest.raises(AnsibleFilterError, match=message) as err:
        fw.firewalld_desired(declarations, 22, [], [])
    assert "svc" in str(err.value)


def test_bad_ssh_source_is_refused_by_variable_name():
    with pytest.raises(AnsibleFilterError, match="firewalld_ssh_sources"):
        fw.firewalld_desired({}, 22, ["anywhere"], [])
