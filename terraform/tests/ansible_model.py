"""What the Ansible side of the repository says the infrastructure must
provide: the groups site.yml's plays target, and the ports each group's roles
declare to firewalld (entry point `declare` of the firewalld role)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

INCLUDE_ROLE = ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role")
JINJA_VAR = re.compile(r"^\{\{\s*([A-Za-z_]\w*)\s*\}\}$")
# firewalld_declare_ports given as one Jinja expression: find its 'port' keys.
PORT_IN_EXPR = re.compile(r"""['"]port['"]\s*:\s*([A-Za-z_]\w*|\d+)""")


def plays(site_yml: Path):
    """Every play reached from site.yml, following import_playbook."""
    pending = [site_yml]
    while pending:
        path = pending.pop(0)
        for play in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            imported = play.get("ansible.builtin.import_playbook") or play.get("import_playbook")
            if imported:
                pending.append((path.parent / imported).resolve())
            else:
                yield play


def play_groups(play) -> set[str]:
    """Groups of a play's host pattern (db:mlflow, web,api, !x, &y, airflow[0])."""
    out = set()
    for part in re.split(r"[:,]", play["hosts"]):
        part = re.sub(r"\[.*\]$", "", part.strip().lstrip("!&"))
        if part:
            out.add(part)
    return out


def _walk_tasks(tasks):
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        yield task
        for key in ("block", "rescue", "always"):
            yield from _walk_tasks(task.get(key))


def _role_name(entry):
    return entry["role"] if isinstance(entry, dict) else entry


class Roles:
    def __init__(self, roles_dir: Path):
        self.roles_dir = roles_dir

    def defaults(self, role: str) -> dict:
        path = self.roles_dir / role / "defaults" / "main.yml"
        return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.exists() else {}

    def tasks(self, role: str):
        for path in sorted((self.roles_dir / role / "tasks").glob("*.yml")):
            yield from _walk_tasks(yaml.safe_load(path.read_text(encoding="utf-8")))

    def _resolve(self, role: str, value):
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if text.isdigit():
            return int(text)
        m = JINJA_VAR.match(text)
        name = m[1] if m else text
        defaults = self.defaults(role)
        if name not in defaults:
            raise AssertionError(f"role {role}: cannot resolve port {value!r} from defaults/main.yml")
        return self._resolve(role, defaults[name])

    def declared_ports(self, role: str, _seen=None) -> set[int]:
        """Ports the role (and the roles it includes) declares to firewalld."""
        seen = _seen if _seen is not None else set()
        if role in seen:
            return set()
        seen.add(role)
        ports: set[int] = set()
        for task in self.tasks(role):
            inc = next((task[k] for k in INCLUDE_ROLE if k in task), None)
            if not isinstance(inc, dict):
                continue
            if inc.get("name") == "firewalld" and inc.get("tasks_from") == "declare":
                declared = (task.get("vars") or {}).get("firewalld_declare_ports", [])
                if isinstance(declared, str):
                    found = PORT_IN_EXPR.findall(declared)
                    assert found, f"role {role}: no port found in {declared!r}"
                    ports |= {self._resolve(role, p) for p in found}
                else:
                    ports |= {self._resolve(role, item["port"]) for item in declared}
            elif inc.get("name") and inc.get("name") != role:
                ports |= self.declared_ports(inc["name"], seen)
        return ports


def declared_ports_by_group(site_yml: Path, roles_dir: Path) -> dict[str, set[int]]:
    """{group: ports its plays' roles declare}; every targeted group is a key."""
    roles = Roles(roles_dir)
    out: dict[str, set[int]] = {}
    for play in plays(site_yml):
        names = [_role_name(r) for r in play.get("roles", [])]
        for task in _walk_tasks(play.get("tasks")):
            inc = next((task[k] for k in INCLUDE_ROLE if k in task), None)
            if isinstance(inc, dict) and inc.get("name"):
                names.append(inc["name"])
        ports = set().union(*(roles.declared_ports(n) for n in names)) if names else set()
        for group in play_groups(play):
            out.setdefault(group, set()).update(ports)
    return out
