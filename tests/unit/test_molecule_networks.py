"""Molecule scenarios run side by side (scripts/lanes): each needs a network of its own.

Two scenarios on one network raced: one's destroy removed the network under
the other's create, and both picked the same fixed addresses.
"""

import ipaddress
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.parent for p in (ROOT / "molecule").glob("*/molecule.yml"))
LAB_CIDR = ipaddress.ip_network(
    yaml.safe_load((ROOT / "inventory/lab/group_vars/all/lab.yml").read_text())["lab_network_cidr"]
    .split("default='")[1]
    .split("'")[0]
)


def _cidr(scenario: Path):
    env = (yaml.safe_load((scenario / "molecule.yml").read_text()).get("provisioner") or {}).get("env") or {}
    assert "LAB_NETWORK_CIDR" in env, f"{scenario.name}: molecule.yml sets no provisioner.env.LAB_NETWORK_CIDR"
    return ipaddress.ip_network(env["LAB_NETWORK_CIDR"])


def test_the_lanes_know_every_scenario():
    """scripts/lanes orders the scenarios longest first: a scenario it does not list runs last."""
    lanes = (ROOT / "scripts" / "lanes").read_text()
    order = [j for j in lanes.split("ORDER=(", 1)[1].split(")", 1)[0].split() if not j.startswith("make:")]
    assert SCENARIOS, "no molecule scenario found"
    assert sorted(order) == sorted(s.name for s in SCENARIOS)


def test_network_name_is_per_scenario():
    base = yaml.safe_load((ROOT / ".config/molecule/config.yml").read_text())
    assert "${MOLECULE_SCENARIO_NAME}" in base["provisioner"]["env"]["LAB_NETWORK_NAME"]
    assert "LAB_NETWORK_CIDR" not in base["provisioner"]["env"], "a shared CIDR in the base config would be shared"


def test_every_scenario_has_its_own_subnet():
    cidrs = {s.name: _cidr(s) for s in SCENARIOS}
    names = sorted(cidrs)
    for i, a in enumerate(names):
        assert not cidrs[a].overlaps(LAB_CIDR), f"{a}: {cidrs[a]} overlaps the lab's {LAB_CIDR}"
        for b in names[i + 1 :]:
            assert not cidrs[a].overlaps(cidrs[b]), f"{a} and {b} share addresses: {cidrs[a]} / {cidrs[b]}"
