"""The topology file is the one source of groups, service ports and client CIDR names.

Each consumer must read it rather than restate it: the platform wiring sets
the roles' ports from it, the roles name their client CIDRs by its rule, the
lab publishes its published services, and every inventory group, molecule
platform and play names only its groups. (Terraform's side: terraform/tests.)
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from conftest import ROLES, ROOT, ansible_debug

PLAYBOOKS = ROOT / "ansible" / "playbooks"
PLATFORM_DEFAULTS = ROLES / "platform_defaults" / "defaults" / "main"
TOPOLOGY_FILE = PLATFORM_DEFAULTS / "topology.yml"
TOPOLOGY = yaml.safe_load(TOPOLOGY_FILE.read_text(encoding="utf-8"))["oci_mlops_topology"]
GROUPS = set(TOPOLOGY["groups"])
SERVICES = TOPOLOGY["services"]
PORTS = {str(svc["port"]) for svc in SERVICES.values()}
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


def _yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _client_cidrs_var(svc: dict) -> str:
    return TOPOLOGY["client_cidrs_variable"] % svc["role"]


def test_the_topology_is_consistent():
    assert TOPOLOGY_FILE.read_text(encoding="utf-8").count("{{") == 0, "the topology is plain data (Terraform reads it)"
    assert {spec["oci"] for spec in TOPOLOGY["groups"].values()} <= {"instances", "managed"}
    seen = set()
    for name, svc in SERVICES.items():
        assert svc["group"] in GROUPS, name
        assert (ROLES / svc["role"]).is_dir(), f"{name}: no role {svc['role']}"
        assert isinstance(svc["published"], bool), name
        assert set(svc.get("clients", [])) <= GROUPS, name
        assert 1 <= svc["port"] <= 65535, name
        assert (svc["group"], svc["port"]) not in seen, f"{name}: port {svc['port']} taken twice on {svc['group']}"
        seen.add((svc["group"], svc["port"]))
    assert "%s" in TOPOLOGY["client_cidrs_variable"]


def _port_wiring() -> dict[str, str]:
    """{service: the role variable set to its port from the topology}, from the roles' defaults."""
    out = {}
    for defaults in sorted(ROLES.glob("*/defaults/main.yml")):
        for var, value in (_yaml(defaults) or {}).items():
            m = re.fullmatch(r"\{\{ oci_mlops_topology\.services\.(\w+)\.port \}\}", str(value))
            if m:
                assert m.group(1) not in out, f"{m.group(1)}'s port set twice"
                out[m.group(1)] = var
    return out


def test_every_service_role_takes_its_port_from_the_topology():
    """Each service's role sets its <role>_port input from the topology in its
    own defaults: a new service needs no wiring line elsewhere."""
    wiring = _port_wiring()
    assert set(wiring) == set(SERVICES)
    for name, var in wiring.items():
        role = SERVICES[name]["role"]
        assert var.startswith(role + "_"), f"{var} is not a variable of role {role}"
        specs = _yaml(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
        assert var in specs, f"{var} is not an input of role {role}"
        assert var in _yaml(ROLES / role / "defaults" / "main.yml"), f"{role}: {var} is not in its defaults"


def test_the_platform_defaults_do_not_shadow_a_role_default():
    """A role's own default wins over platform_defaults inside that role (both
    are role defaults; the running role's come last): each variable must be
    defined in one of them only."""
    platform = set()
    for path in PLATFORM_DEFAULTS.glob("*.yml"):
        platform |= set(_yaml(path))
    for defaults in ROLES.glob("*/defaults/main.yml"):
        both = platform & set(_yaml(defaults) or {})
        assert not both, f"{defaults.parent.parent.name} and platform_defaults both define {sorted(both)}"


def test_every_service_role_uses_the_client_cidrs_rule_with_one_posture():
    """Every role's default is the platform-wide posture; a routed service
    (behind the edge) first takes its clients' /32s (wiring.yml), which exist
    only when the inventory has an edge host."""
    for name, svc in SERVICES.items():
        role, var = svc["role"], _client_cidrs_var(svc)
        want = (
            f"{{{{ oci_mlops_service_client_cidrs.{name} | default(oci_mlops_client_cidrs) }}}}"
            if "route" in svc
            else "{{ oci_mlops_client_cidrs }}"
        )
        assert _yaml(ROLES / role / "defaults" / "main.yml").get(var) == want, f"{role}: {var}"
        spec = _yaml(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"][var]
        assert spec["default"] == PRIVATE_RANGES and not spec.get("required"), f"{role}: {var}"
        tasks = (ROLES / role / "tasks" / "main.yml").read_text(encoding="utf-8")
        assert f"'sources': {var}}}] if {var} else []" in tasks, f"{role} does not declare its port to {var}"


def test_the_edge_is_the_only_published_service_and_fronts_the_routed_ones():
    published = [name for name, svc in SERVICES.items() if svc["published"]]
    assert published == ["edge"]
    edge = SERVICES["edge"]
    assert edge["group"] == "edge" and edge["role"] == "edge" and TOPOLOGY["groups"]["edge"]["oci"] == "instances"
    assert (edge["port"], edge["http_port"]) == (443, 80)
    routed = {name: svc for name, svc in SERVICES.items() if "route" in svc}
    assert set(routed) == {"mlflow", "airflow", "api", "dashboard"}
    routes = [svc["route"] for svc in routed.values()]
    assert len(set(routes)) == len(routes)
    for name, svc in routed.items():
        assert re.fullmatch(r"/[a-z0-9-]+/", svc["route"]), name
        assert not svc["published"], name
        assert "edge" in svc["clients"], f"{name}: the edge does not reach it"
    # the peers that call a service are its clients
    assert {"airflow", "api"} <= set(SERVICES["mlflow"]["clients"])


def test_no_other_client_cidr_name_is_used():
    """The old names (and any other *_sources of a service port) are gone."""
    pattern = re.compile(r"\b(mlflow_firewalld_sources|airflow_api_sources|\w+_allowed_cidrs)\b")
    paths = list((ROOT / "ansible").rglob("*.yml")) + list((ROOT / "inventory").rglob("*.yml"))
    paths += list((ROOT / "molecule").rglob("*.yml")) + list((ROOT / "terraform").glob("**/*.tf*"))
    offenders = [str(p.relative_to(ROOT)) for p in paths if pattern.search(p.read_text(encoding="utf-8"))]
    assert not offenders, offenders


def test_one_platform_wide_default_posture_for_every_client_cidrs_variable():
    wiring = _yaml(PLATFORM_DEFAULTS / "wiring.yml")
    assert wiring["oci_mlops_client_cidrs"] == PRIVATE_RANGES


def test_the_lab_narrows_every_service_to_its_network_in_one_place():
    """A new service needs no lab line: the lab sets the platform-wide default only."""
    lab = _yaml(ROOT / "inventory" / "lab" / "group_vars" / "all" / "lab.yml")
    assert lab["oci_mlops_client_cidrs"] == ["{{ lab_network_cidr }}"]
    restated = sorted(name for name in lab if name.endswith("_client_cidrs") and name != "oci_mlops_client_cidrs")
    assert not restated, f"the lab restates per-service client CIDRs: {restated}"


def test_no_port_is_restated_in_the_platform_wiring():
    """Ports live in the topology only: the platform's defaults and templates
    and the lab inventory take them from it."""
    files = [p for p in PLATFORM_DEFAULTS.rglob("*.yml") if p != TOPOLOGY_FILE]
    files += list((PLAYBOOKS / "templates").rglob("*")) + list((ROOT / "inventory" / "lab").rglob("*.yml"))
    assert files
    for path in files:
        text = re.sub(r"#.*", "", path.read_text(encoding="utf-8"))
        for port in PORTS:
            assert not re.search(rf"(?<![\d.]){port}(?![\d.])", text), f"{path.relative_to(ROOT)} restates port {port}"


def _molecule_platform_groups():
    for path in sorted((ROOT / "molecule").glob("*/molecule.yml")):
        for platform in _yaml(path).get("platforms", []):
            yield path.parent.name, platform["name"], set(platform.get("groups", []))


def test_molecule_platforms_use_topology_groups():
    found = list(_molecule_platform_groups())
    assert found
    for scenario, platform, groups in found:
        assert groups <= GROUPS, f"molecule/{scenario} {platform}: {groups - GROUPS}"


def _lab_published_services(tmp_path: Path) -> list[dict]:
    result = ansible_debug(
        ROOT / "inventory" / "lab",
        "localhost",
        "var=lab_published_services",
        LAB_PORT_OFFSET="10000",
        OCI_MLOPS_SECRETS_DIR=str(tmp_path),
    )
    return result["lab_published_services"]


def test_the_lab_publishes_exactly_the_published_services(tmp_path):
    """The edge, alone: its HTTPS port and its redirect port, shifted by LAB_PORT_OFFSET."""
    published = _lab_published_services(tmp_path)
    want = {name: svc for name, svc in SERVICES.items() if svc["published"]}
    assert set(want) == {"edge"}, "the topology publishes more than the edge"
    got = sorted((s["name"], s["group"], s["port"], s["url"]) for s in published)
    edge = SERVICES["edge"]
    assert got == sorted(
        [
            ("edge", "edge", edge["port"], f"https://127.0.0.1:{edge['port'] + 10000}"),
            ("edge", "edge", edge["http_port"], f"http://127.0.0.1:{edge['http_port'] + 10000}"),
        ]
    )
