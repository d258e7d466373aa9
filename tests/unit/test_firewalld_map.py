"""The firewall retraction map names exactly what the roles declare, for groups that exist.

oci_mlops_firewalld_declarations_by_group (platform_defaults, platform.yml) is
derived from the topology: each service's role declares its port under the
service's name, kept on the hosts of the service's group. platform.yml and
firewalld.yml pass it to the firewalld role; a declaration missing from it
would be retracted on the next run (its port closed), a name no role declares
would retract nothing.
"""

import re

import yaml
from conftest import ROLES, ROOT, TOPOLOGY, ansible_debug

SERVICES = TOPOLOGY["services"]


def _declared_by_role() -> dict[str, set[str]]:
    declared: dict[str, set[str]] = {}
    for tasks in ROLES.glob("*/tasks/*.yml"):
        for name in re.findall(r"^\s*firewalld_declare_name:\s*(\S+)\s*$", tasks.read_text(), re.MULTILINE):
            declared.setdefault(tasks.parts[-3], set()).add(name)
    return declared


def _inventory_groups(node: dict) -> set[str]:
    groups = set()
    for name, child in (node.get("children") or {}).items():
        groups |= {name} | _inventory_groups(child or {})
    return groups


# Roles written but not yet in the topology, with the declaration they make
# (none: the edge, issue #14, is the topology's `edge` service).
NOT_YET_IN_THE_TOPOLOGY: dict[str, set[str]] = {}


def test_each_service_role_declares_its_port_under_the_service_name():
    declared = {role: names for role, names in _declared_by_role().items() if role != "firewalld"}
    assert declared, "found no firewalld_declare_name in the roles: the test reads the wrong place"
    wanted = {svc["role"]: {name} for name, svc in SERVICES.items()}
    pending = {role: names for role, names in NOT_YET_IN_THE_TOPOLOGY.items() if role not in wanted}
    assert declared == wanted | pending


def test_the_platform_keeps_each_declaration_on_its_service_group(tmp_path):
    rendered = ansible_debug(
        ROOT / "inventory" / "lab",
        "localhost",
        "var=oci_mlops_firewalld_declarations_by_group",
        OCI_MLOPS_SECRETS_DIR=str(tmp_path),
    )["oci_mlops_firewalld_declarations_by_group"]
    want: dict[str, list[str]] = {}
    for name, svc in SERVICES.items():
        want.setdefault(svc["group"], []).append(name)
    assert rendered == want


def test_map_groups_are_inventory_groups():
    lab = yaml.safe_load((ROOT / "inventory/lab/hosts.yml").read_text())["all"]
    groups = {svc["group"] for svc in SERVICES.values()}
    assert groups <= _inventory_groups(lab), f"unknown groups: {sorted(groups - _inventory_groups(lab))}"


def test_the_firewall_gets_the_platform_map():
    for playbook in ("platform.yml", "firewalld.yml"):
        text = (ROOT / "ansible" / "playbooks" / playbook).read_text()
        assert 'firewalld_declarations_by_group: "{{ oci_mlops_firewalld_declarations_by_group }}"' in text, playbook
