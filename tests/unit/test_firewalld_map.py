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


def test_each_declaration_is_kept_by_the_group_whose_play_runs_its_role():
    # A playbook's hosts: <group> and its roles: the declarations of those roles must be in MAP[group].
    declared = _declared_by_role()
    checked = 0
    for playbook in (ROOT / "ansible/playbooks").glob("*.yml"):
        for play in yaml.safe_load(playbook.read_text()) or []:
            hosts = str(play.get("hosts", ""))
            if not re.fullmatch(r"\w+", hosts) or hosts == "all":
                continue
            roles = [r["role"] if isinstance(r, dict) else r for r in play.get("roles", [])]
            for role in roles:
                for name in declared.get(role, ()):
                    checked += 1
                    assert name in MAP.get(hosts, []), (
                        f"{playbook.name}: {role} declares {name} on {hosts}, not in the map"
                    )
    assert checked, "no play with a declaring role found"
