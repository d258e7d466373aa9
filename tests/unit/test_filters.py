"""The roles' filter plugins."""

import base64
import hashlib
import json
import re

import pytest
from ansible.errors import AnsibleFilterError
from conftest import ROLES, load_plugin

lab = load_plugin(ROLES / "lab_containers" / "filter_plugins" / "lab_cgroup.py")
fw = load_plugin(ROLES / "firewalld" / "filter_plugins" / "firewalld_desired.py")
fernet = load_plugin(ROLES / "platform_defaults" / "filter_plugins" / "airflow_fernet.py")

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
        {
            "item": "oci-mlops-lab/debian:sid",
            "images": [{"Config": {"Labels": {"org.oci-mlops.systemd-version": "262"}}}],
        },
        {"item": "oraclelinux:9", "images": [{"Config": {"Labels": None}}]},
    ]
    assert lab.lab_image_systemd_versions(results, 252) == {"oci-mlops-lab/debian:sid": 262, "oraclelinux:9": 252}


def test_static_addresses_keep_existing_and_spread_new_ones():
    taken = {"lab-db": "172.28.52.2", "other": "172.28.52.3", "stopped": ""}
    got = lab.lab_static_addresses(["lab-db", "lab-api", "lab-mlflow"], "172.28.52.0/24", taken)
    assert got["lab-db"] == "172.28.52.2"
    assert len(set(got.values())) == 3
    assert not {got["lab-api"], got["lab-mlflow"]} & {"172.28.52.0", "172.28.52.1", "172.28.52.3", "172.28.52.255"}
    assert got == lab.lab_static_addresses(["lab-db", "lab-api", "lab-mlflow"], "172.28.52.0/24", taken)


def test_static_addresses_fail_when_the_subnet_is_full():
    taken = {f"h{i}": f"10.0.0.{i}" for i in range(2, 7)}
    with pytest.raises(AnsibleFilterError, match="no free address"):
        lab.lab_static_addresses(["new"], "10.0.0.0/29", taken)


def test_network_addresses_prefer_the_fixed_address():
    containers = [
        {
            "Names": ["/a"],
            "NetworkSettings": {"Networks": {"lab": {"IPAMConfig": {"IPv4Address": "10.0.0.5"}, "IPAddress": ""}}},
        },
        {"Names": ["/b"], "NetworkSettings": {"Networks": {"lab": {"IPAMConfig": None, "IPAddress": "10.0.0.6"}}}},
        {"Names": ["/c"], "NetworkSettings": {"Networks": {"other": {"IPAddress": "10.1.0.6"}}}},
    ]
    assert lab.lab_network_addresses(containers, "lab") == {"a": "10.0.0.5", "b": "10.0.0.6", "c": ""}


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
    assert wanted["rich_rules"] == [
        'rule family="ipv4" source address="10.0.1.0/24" port port="1" protocol="tcp" accept'
    ]


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


def test_declarations_kept_and_retracted():
    paths = ["/d/mlflow.json", "/d/dashboard.json", "/d/old-service.json"]
    assert fw.firewalld_declarations_kept(paths, ["dashboard", "mlflow"]) == ["/d/dashboard.json", "/d/mlflow.json"]
    assert fw.firewalld_declarations_kept(paths, ["dashboard", "mlflow"], kept=False) == ["/d/old-service.json"]
    assert fw.firewalld_declarations_kept(paths, []) == []
    assert fw.firewalld_declarations_kept(paths, [], kept=False) == sorted(paths)


def test_no_expected_set_keeps_every_declaration():
    paths = ["/d/b.json", "/d/a.json"]
    assert fw.firewalld_declarations_kept(paths, None) == ["/d/a.json", "/d/b.json"]
    assert fw.firewalld_declarations_kept(paths, None, kept=False) == []


def test_declarations_kept_refuses_a_non_list():
    with pytest.raises(AnsibleFilterError, match="list of names"):
        fw.firewalld_declarations_kept(["/d/a.json"], "a")


# --- airflow_derive_fernet_key ------------------------------------------------------

SECRET = "s3cretS3cretS3cretS3cretS3cretS3cretS3cretS3cretS3cretS3cretS3cr"  # 64 characters, like the controller's


def test_fernet_key_is_urlsafe_base64_of_32_bytes():
    key = fernet.airflow_fernet_key(SECRET)
    assert len(key) == 44 and key.endswith("=")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}=", key)  # the format the role asserts
    raw = base64.urlsafe_b64decode(key.encode("ascii"))
    assert len(raw) == 32
    assert raw == hashlib.sha256(SECRET.encode()).digest()


def test_fernet_key_is_deterministic_and_depends_on_the_secret():
    assert fernet.airflow_fernet_key(SECRET) == fernet.airflow_fernet_key(SECRET)
    keys = {fernet.airflow_fernet_key(SECRET[:-1] + c) for c in "abcdefgh"}
    assert len(keys) == 8
    assert fernet.airflow_fernet_key(SECRET) != fernet.airflow_fernet_key(SECRET.upper())


def test_fernet_key_is_accepted_by_cryptography():
    pytest.importorskip("cryptography")
    from cryptography.fernet import Fernet

    box = Fernet(fernet.airflow_fernet_key(SECRET))
    assert box.decrypt(box.encrypt(b"airflow connection password")) == b"airflow connection password"
    # another secret's key cannot read it
    other = Fernet(fernet.airflow_fernet_key(SECRET[::-1]))
    from cryptography.fernet import InvalidToken

    with pytest.raises(InvalidToken):
        other.decrypt(box.encrypt(b"x"))


def test_fernet_key_of_non_ascii_and_non_string_secrets():
    unicode_secret = "é" * 32
    assert len(base64.urlsafe_b64decode(fernet.airflow_fernet_key(unicode_secret))) == 32
    # anything is taken as its string form (Ansible may hand over an AnsibleUnsafeText or a number)
    assert fernet.airflow_fernet_key(10**40) == fernet.airflow_fernet_key(str(10**40))


@pytest.mark.parametrize("secret", ["", "short", "x" * 31, None])
def test_fernet_key_refuses_short_secrets(secret):
    with pytest.raises(AnsibleFilterError, match="at least 32 characters"):
        fernet.airflow_fernet_key(secret)


def test_fernet_filter_is_registered_under_the_name_the_wiring_uses(root):
    assert fernet.FilterModule().filters()["airflow_derive_fernet_key"] is fernet.airflow_fernet_key
    wiring = (root / "ansible" / "roles" / "platform_defaults" / "defaults" / "main" / "airflow.yml").read_text(
        encoding="utf-8"
    )
    # `| airflow_derive_fernet_key`, or mapped over the key list (new, old) during a rotation
    assert re.search(r"\|\s*(map\(\s*'airflow_derive_fernet_key'\s*\)|airflow_derive_fernet_key\b)", wiring), wiring


# Recorded from `firewall-cmd` 1.3.3 (Debian 12) through the role's read task:
# runtime has a port nobody declared and the permanent side lost a rich rule.
FIREWALL_READ = """@@default-zone
public
@@runtime
public (active)
  target: default
  services: ssh dhcpv6-client
  ports: 6666/tcp
  protocols: \n  rich rules: \n\trule family="ipv4" source address="172.28.52.0/24" port port="22" protocol="tcp" accept
\trule family="ipv4" source address="172.28.52.0/24" port port="5000" protocol="tcp" accept
@@permanent
public
  target: default
  services: \n  ports: \n  rich rules: \n\trule family="ipv4" source address="172.28.52.0/24" \
port port="22" protocol="tcp" accept
@@declarations
/etc/oci-mlops/firewalld.d/mlflow.json\t[    {        "port": 5000,        "sources": [  "172.28.52.0/24"  ]    }]
"""


def test_the_firewall_read_parses_each_side_and_the_declarations():
    state = fw.firewalld_state(FIREWALL_READ)
    assert state["default_zone"] == "public"
    assert state["runtime"]["ports"] == ["6666/tcp"]
    assert state["runtime"]["services"] == ["ssh", "dhcpv6-client"]
    assert len(state["runtime"]["rich_rules"]) == 2
    assert state["permanent"] == {
        "services": [],
        "ports": [],
        "rich_rules": ['rule family="ipv4" source address="172.28.52.0/24" port port="22" protocol="tcp" accept'],
    }
    assert list(state["declarations"]) == ["/etc/oci-mlops/firewalld.d/mlflow.json"]
    wanted = fw.firewalld_desired(
        {"mlflow": json.loads(state["declarations"]["/etc/oci-mlops/firewalld.d/mlflow.json"])},
        22,
        ["172.28.52.0/24"],
        [],
    )
    # The rule missing from the permanent side is what the role adds back.
    assert set(wanted["rich_rules"]) - set(state["permanent"]["rich_rules"]) == {
        'rule family="ipv4" source address="172.28.52.0/24" port port="5000" protocol="tcp" accept'
    }


def test_a_truncated_firewall_read_is_an_error():
    with pytest.raises(AnsibleFilterError, match="declarations"):
        fw.firewalld_state(FIREWALL_READ.split("@@declarations")[0])


DECL_DIR = "/etc/oci-mlops/firewalld.d"
MLFLOW_DECLARED = {"mlflow": [{"port": 5000, "sources": ["172.28.52.0/24"]}]}


def _with_meta(meta: str) -> str:
    return FIREWALL_READ + "@@declarations-meta\n" + meta


def test_a_declaration_equal_on_the_host_is_not_written_again():
    state = fw.firewalld_state(_with_meta(f"{DECL_DIR}\t755 root root\n{DECL_DIR}/mlflow.json\t644 root root\n"))
    assert state["meta"][f"{DECL_DIR}/mlflow.json"] == "644 root root"
    assert fw.firewalld_declarations_to_write(MLFLOW_DECLARED, state, DECL_DIR) == []


@pytest.mark.parametrize(
    "declared, meta, why",
    [
        ({"mlflow": [{"port": 5001, "sources": ["172.28.52.0/24"]}]}, "644 root root", "other content"),
        (MLFLOW_DECLARED, "666 root root", "other mode"),
        (MLFLOW_DECLARED, "644 nobody root", "other owner"),
        ({"api": [{"port": 8000}]}, "644 root root", "no file yet"),
    ],
)
def test_a_declaration_that_differs_on_the_host_is_written(declared, meta, why):
    state = fw.firewalld_state(_with_meta(f"{DECL_DIR}/mlflow.json\t{meta}\n"))
    assert fw.firewalld_declarations_to_write(declared, state, DECL_DIR + "/") == [
        {"key": name, "value": entries} for name, entries in declared.items()
    ], why


def test_a_read_without_meta_writes_every_declaration():
    state = fw.firewalld_state(FIREWALL_READ)
    assert state["meta"] == {}
    assert fw.firewalld_declarations_to_write(MLFLOW_DECLARED, state, DECL_DIR) == [
        {"key": "mlflow", "value": MLFLOW_DECLARED["mlflow"]}
    ]


# --- where each filter is loaded ------------------------------------------------
# Ansible loads a role's filter_plugins when the role is in the play. platform.yml
# includes a service role only on its group's hosts, so a filter that a role's
# variables use must come with that role or with platform_defaults (every play
# loads it): `site.yml --limit db` converged the db host without the airflow
# role, and the backup role's arguments (airflow_fernet_key, a platform_defaults
# default) failed with "No filter named 'airflow_derive_fernet_key'" while that
# filter lived in the airflow role.
def _filters_of(role_dir):
    names = set()
    for plugin in sorted((role_dir / "filter_plugins").glob("*.py")):
        names |= set(load_plugin(plugin).FilterModule().filters())
    return names


def _uses(text, name):
    # `| name`, `map('name')`, `select("name")`...: the filter's name as a word in a template
    return re.search(rf"(\|\s*{name}\b|['\"]{name}['\"])", text) is not None


def test_each_filter_a_role_uses_is_loaded_with_it_or_with_platform_defaults():
    roles = sorted(p for p in ROLES.iterdir() if (p / "meta" / "main.yml").is_file())
    defined = {role.name: _filters_of(role) for role in roles}
    everywhere = defined["platform_defaults"]
    elsewhere = {name: owner for owner, names in defined.items() for name in names}
    assert "airflow_derive_fernet_key" in everywhere
    missing = []
    for role in roles:
        for path in sorted(role.rglob("*")):
            if path.suffix not in (".yml", ".yaml", ".j2") or not path.is_file():
                continue
            text = path.read_text(encoding="utf-8")
            for name, owner in elsewhere.items():
                if name not in everywhere | defined[role.name] and _uses(text, name):
                    missing.append(f"{path.relative_to(ROLES)} uses {name} of the {owner} role")
    assert not missing, missing
