"""The firewall retraction map names exactly what the roles declare, for groups that exist.

firewalld_declarations_by_group (ansible/playbooks/group_vars/all/platform.yml)
tells the firewalld role which declarations a host keeps; a declaration that
is missing from it would be retracted on the next run (its port closed), a
name no role declares would retract nothing.
"""

import re

import yaml
from conftest import ROLES, ROOT

MAP = yaml.safe_load((ROOT / "ansible/playbooks/group_vars/all/platform.yml").read_text())[
    "firewalld_declarations_by_group"
]


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


def test_every_declaration_of_a_service_role_is_kept_somewhere():
    declared = {n for role, names in _declared_by_role().items() if role != "firewalld" for n in names}
    kept = {n for names in MAP.values() for n in names}
    assert declared, "found no firewalld_declare_name in the roles: the test reads the wrong place"
    assert declared <= kept, f"declared but retracted on every host: {sorted(declared - kept)}"
    assert kept <= declared, f"in the map but declared by no role: {sorted(kept - declared)}"


def test_map_groups_are_inventory_groups():
    lab = yaml.safe_load((ROOT / "inventory/lab/hosts.yml").read_text())["all"]
    assert set(MAP) - {"all"} <= _inventory_groups(lab), f"unknown groups: {sorted(set(MAP) - _inventory_groups(lab))}"


def test_each_declaration_is_kept_by_the_group_whose_hosts_run_its_role():
    # platform.yml applies each role with `when: "'<group>' in group_names"`:
    # the declarations of that role must be in MAP[group].
    declared = _declared_by_role()
    checked = 0
    for play in yaml.safe_load((ROOT / "ansible/playbooks/platform.yml").read_text()):
        for task in play.get("tasks", []):
            include = task.get("ansible.builtin.include_role")
            match = re.fullmatch(r"'(\w+)' in group_names", str(task.get("when", "")))
            if not include or not match:
                continue
            for name in declared.get(include["name"], ()):
                checked += 1
                assert name in MAP.get(match.group(1), []), (
                    f"platform.yml: {include['name']} declares {name} on {match.group(1)}, not in the map"
                )
    assert checked, "no role applied by group found in platform.yml"
