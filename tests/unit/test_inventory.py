"""The lab inventory and the plays name only the topology's groups
(ansible/roles/platform_defaults/defaults/main/topology.yml)."""

import json
import re
import subprocess

import yaml
from conftest import ROOT

TOPOLOGY = yaml.safe_load(
    (ROOT / "ansible" / "roles" / "platform_defaults" / "defaults" / "main" / "topology.yml").read_text(
        encoding="utf-8"
    )
)["oci_mlops_topology"]
GROUPS = set(TOPOLOGY["groups"])


def _plays(*roots):
    """Every play reached from the given playbooks (default site.yml), following import_playbook."""
    pending = list(roots) or [ROOT / "site.yml"]
    while pending:
        path = pending.pop(0)
        for play in yaml.safe_load(path.read_text(encoding="utf-8")):
            imported = play.get("ansible.builtin.import_playbook")
            if imported:
                pending.append((path.parent / imported).resolve())
            else:
                yield play


def _lab_groups():
    out = subprocess.run(
        ["ansible-inventory", "-i", str(ROOT / "inventory" / "lab"), "--list"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    data = json.loads(out)
    return {g: data.get(g, {}).get("hosts", []) for g in data["all"]["children"] if g != "ungrouped"}


def test_lab_has_one_host_per_topology_group():
    # The lab stands in for OCI's managed services too: every group has a
    # host, but the optional ones (the Celery broker and workers), which the
    # small lab leaves empty (LocalExecutor; the scale profile has them).
    optional = {name for name, group in TOPOLOGY["groups"].items() if group.get("optional")}
    assert optional == {"broker", "airflow_worker"}
    groups = {name: hosts for name, hosts in _lab_groups().items() if hosts}
    assert set(groups) == GROUPS - optional
    for name, hosts in groups.items():
        assert len(hosts) == 1, f"group {name} has {hosts}"


def _pattern_groups(pattern: str) -> set[str]:
    """Group names in a host pattern: "db:mlflow", "airflow[0]", "all:!db", "a:&b"."""
    names = set()
    for part in re.split(r"[:,]", pattern):
        name = re.sub(r"\[.*\]$", "", part.strip().lstrip("!&"))
        if name:
            names.add(name)
    return names


def test_every_play_targets_topology_groups():
    targets = set()
    # site.yml, the lab's and other playbooks, and the molecule scenarios' plays.
    for play in _plays(
        ROOT / "site.yml",
        *sorted((ROOT / "ansible" / "playbooks").glob("*.yml")),
        *sorted((ROOT / "molecule").glob("*/converge.yml")),
    ):
        targets |= _pattern_groups(play["hosts"])
    assert targets, "site.yml has no plays"
    assert targets <= GROUPS | {"all", "localhost"}, targets - GROUPS


def test_every_play_is_tagged_with_its_roles():
    for play in _plays():
        # platform_defaults has no tasks (its defaults are the play's).
        roles = [r["role"] if isinstance(r, dict) else r for r in play.get("roles", [])]
        roles = [r for r in roles if r != "platform_defaults"]
        assert set(roles) <= set(play.get("tags", [])), f"play {play['name']} lacks tags for {roles}"
