"""The lab inventory and site.yml agree on the host groups."""

import json
import subprocess

import yaml
from conftest import ROOT

SERVICE_GROUPS = {"db", "mlflow", "airflow", "api"}
# Lab-only groups: stand-ins for OCI managed services.
LAB_GROUPS = {"objectstore"}


def _plays():
    """Every play reached from site.yml, following import_playbook."""
    pending = [ROOT / "site.yml"]
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
    return {g: data[g].get("hosts", []) for g in data["all"]["children"] if g != "ungrouped"}


def test_lab_has_one_host_per_service_group():
    groups = _lab_groups()
    assert set(groups) == SERVICE_GROUPS | LAB_GROUPS
    for name, hosts in groups.items():
        assert len(hosts) == 1, f"group {name} has {hosts}"


def test_every_play_targets_a_known_group():
    targets = {group for play in _plays() for group in play["hosts"].replace(",", ":").split(":")}
    assert targets, "site.yml has no plays"
    assert targets <= SERVICE_GROUPS | LAB_GROUPS | {"all"}, targets


def test_every_play_is_tagged_with_its_roles():
    for play in _plays():
        roles = [r["role"] if isinstance(r, dict) else r for r in play.get("roles", [])]
        assert set(roles) <= set(play.get("tags", [])), f"play {play['name']} lacks tags for {roles}"
