"""The topology's optional instance groups on OCI (Airflow's CeleryExecutor:
the `broker` host running Redis and the `airflow_worker` hosts), with the
configuration EVALUATED for given instance_groups (tests/hcleval.py): the
preconditions and the count validation as Terraform would decide them at
plan, and what the NSG rules, instances, tags, load balancer backends, IAM
and the rendered inventory variables come to with the new groups at count 0
and above. What the configuration should compute is computed again here
from the topology file.
"""

from __future__ import annotations

import copy
import re

import hcleval
import pytest
import test_terraform as tt
import tftpl
import yaml
from conftest import TF_DIR

TOPOLOGY = tt.TOPOLOGY
SERVICES = TOPOLOGY["services"]
INSTANCE_GROUPS = tt.INSTANCE_GROUPS
OPTIONAL = {g for g, spec in TOPOLOGY["groups"].items() if spec.get("optional")}
DB_GROUP = SERVICES["mysql"]["group"]
PRIVATE_SUBNET, PUBLIC_SUBNET = "10.0.2.0/24", "10.0.1.0/24"
# The variables without a default (validated elsewhere, not evaluated here).
REQUIRED = dict(
    tenancy_ocid="ocid1.tenancy.oc1..aaaatest",
    compartment_ocid="ocid1.compartment.oc1..aaaatest",
    region="eu-frankfurt-1",
    admin_ssh_cidr="203.0.113.10/32",
    lb_certificate_id="ocid1.certificate.oc1.eu-frankfurt-1.aaaatest",
    ssh_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITest operator@example",
    db_admin_password="Aa1!aaaaaaaa",
    mysql_version="8.4.6",
)
CELERY = {"broker": 1, "airflow_worker": 3}
NSG = "oci_core_network_security_group"


def _default_groups(tf) -> dict:
    return hcleval.value_of(tf.variables()["instance_groups"]["default"], {})


def _model(tf, counts=None, groups=None, locals_=None):
    """The configuration with the default instance_groups, the given counts overriding theirs."""
    groups = copy.deepcopy(groups if groups is not None else _default_groups(tf))
    for group, count in (counts or {}).items():
        groups[group]["count"] = count
    return hcleval.Model(tf, TF_DIR, locals_=locals_, instance_groups=groups, **REQUIRED)


def _refusals(model) -> list[str]:
    """Everything the plan would stop on for instance_groups: its validations'
    and the NSGs' preconditions' error messages."""
    return model.failed_validations("instance_groups") + model.failed_preconditions(NSG, "service")


def _port(rule) -> int:
    """The one port a rule (an evaluated security rule resource) opens."""
    (rng,) = rule["tcp_options"][0]["destination_port_range"]
    assert rng["min"] == rng["max"], rng
    return rng["min"]


def _nsg_group(ref: str) -> str:
    """The group of an NSG reference: <...service[<group>].id>, the DB System's, the load balancer's."""
    m = re.fullmatch(rf"<{NSG}\.service\[(\w+)\]\.id>", ref)
    if m:
        return m.group(1)
    return {f"<{NSG}.db.id>": DB_GROUP, f"<{NSG}.lb.id>": "lb"}[ref]


# --------------------------------------------------------------------------
# The topology and the defaults
# --------------------------------------------------------------------------
def test_the_topology_marks_the_celery_groups_optional():
    assert OPTIONAL == {"broker", "airflow_worker"}
    assert OPTIONAL <= INSTANCE_GROUPS
    assert set(SERVICES["broker"]["clients"]) == {"airflow", "airflow_worker"}
    # One Redis: the broker's service does not scale out; the workers do.
    assert not SERVICES["broker"].get("scale_out") and SERVICES["airflow_worker"]["scale_out"]


def test_the_evaluator_reads_the_topology_as_terraform_does(tf):
    model = _model(tf)
    assert model.local("topology") == TOPOLOGY
    assert model.local("instance_group_names") == sorted(INSTANCE_GROUPS)
    assert model.local("optional_groups") == sorted(OPTIONAL)


def test_the_defaults_add_the_optional_groups_without_hosts(tf):
    groups = _default_groups(tf)
    assert set(groups) == INSTANCE_GROUPS
    assert groups["broker"] == {"count": 0, "ocpus": 1, "memory_gbs": 4}
    assert groups["airflow_worker"] == {"count": 0, "ocpus": 2, "memory_gbs": 16}
    assert {g for g, spec in groups.items() if spec["count"] == 0} == OPTIONAL
    model = _model(tf)
    assert _refusals(model) == []
    assert {spec["group"] for spec in model.local("instances").values()} == INSTANCE_GROUPS - OPTIONAL


# --------------------------------------------------------------------------
# What the plan refuses (evaluated preconditions and validation)
# --------------------------------------------------------------------------
ACCEPTED = [
    {},
    {"broker": 1},  # a broker without workers: the LocalExecutor still runs the tasks (as in Ansible)
    {"broker": 1, "airflow_worker": 1},
    {"broker": 1, "airflow_worker": 10},
    {"broker": 1, "airflow_worker": 3, "mlflow": 2, "api": 3, "edge": 2},
    # Several airflow hosts (HA schedulers) with Celery workers.
    {"airflow": 2, "broker": 1, "airflow_worker": 1},
]


@pytest.mark.parametrize("counts", ACCEPTED, ids=lambda c: ",".join(f"{g}={n}" for g, n in c.items()) or "defaults")
def test_the_plan_accepts(tf, counts):
    assert _refusals(_model(tf, counts)) == []


REFUSED = [
    # Celery workers without a broker.
    (
        {"airflow_worker": 1},
        ["instance_groups", "airflow_worker has 1 host(s)", "calls broker", "count 0", "without a broker"],
    ),
    ({"airflow_worker": 4}, ["instance_groups", "airflow_worker has 4 host(s)", "group broker has count 0"]),
    # One Redis.
    ({"broker": 2}, ["instance_groups", "broker has count 2", "one Redis"]),
    ({"broker": 3, "airflow_worker": 2}, ["instance_groups", "broker has count 3"]),
    # Count 0 only for the optional groups.
    ({"mlflow": 0}, ["instance_groups", "count 0 for mlflow", "only airflow_worker, broker may have no host"]),
    ({"edge": 0, "airflow": 0}, ["instance_groups", "count 0 for airflow, edge"]),
    ({"api": 0, "broker": 1, "airflow_worker": 1}, ["instance_groups", "count 0 for api"]),
    # Several airflow hosts only with Celery workers (scale_out_requires;
    # more cases in test_scale_out_requires.py).
    ({"airflow": 2}, ["instance_groups", "airflow has count 2", "count 0 for airflow_worker"]),
]


@pytest.mark.parametrize("counts, words", REFUSED, ids=lambda c: str(c))
def test_the_plan_refuses_by_name(tf, counts, words):
    """Exactly one refusal, naming the variable and what is wrong."""
    (message,) = _refusals(_model(tf, counts))
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize("count", [-1, 11, 1.5])
def test_counts_outside_0_to_10_or_fractional_are_refused_by_the_validation(tf, count):
    model = _model(tf, {"airflow_worker": count, "broker": 1})
    (message,) = model.failed_validations("instance_groups")
    assert "instance_groups" in message and "from 0 to 10" in message


def test_the_keys_are_still_exactly_the_topologys_instance_groups(tf):
    groups = _default_groups(tf)
    del groups["broker"]
    messages = _model(tf, groups=groups).failed_preconditions(NSG, "service")
    assert any("instance_groups must have exactly the topology's instance groups" in m for m in messages), messages


def test_what_may_be_0_follows_the_topologys_optional_key(tf):
    """The same counts, another topology: the rule reads `optional`, it names no group."""
    topology = copy.deepcopy(TOPOLOGY)
    topology["groups"]["api"]["optional"] = True
    del topology["groups"]["broker"]["optional"]
    counts = {"api": 0, "broker": 0}
    only = ", ".join(sorted(OPTIONAL))
    assert _refusals(_model(tf, counts)) == [
        f"instance_groups: count 0 for api, which the topology does not mark optional: only {only} may have no host; "
        "the others need 1 to 10."
    ]
    (message,) = _refusals(_model(tf, counts, locals_={"topology": topology}))
    assert "count 0 for broker" in message and "only airflow_worker, api may have no host" in message


def test_what_an_optional_group_needs_follows_the_topologys_clients(tf):
    """Workers that no longer call the broker (topology) need no broker host."""
    topology = copy.deepcopy(TOPOLOGY)
    topology["services"]["broker"]["clients"] = ["airflow"]
    assert _refusals(_model(tf, {"airflow_worker": 1}, locals_={"topology": topology})) == []


# --------------------------------------------------------------------------
# NSGs and rules follow the topology, whatever the counts
# --------------------------------------------------------------------------
def _expected_nsg_sourced_rules() -> set[tuple[str, int, str]]:
    """(target group, port, source group) of every NSG-sourced rule, from the topology."""
    nsg_groups = INSTANCE_GROUPS | {DB_GROUP}
    rules = {
        (svc["group"], svc["port"], client)
        for svc in SERVICES.values()
        if not svc["published"] and svc["group"] in nsg_groups
        for client in svc.get("clients", [])
    }
    lb = {n: s for n, s in SERVICES.items() if s["published"] and s["group"] in INSTANCE_GROUPS}
    front = {s["group"] for s in lb.values()}
    peers = {c for s in SERVICES.values() if s.get("route") for c in s.get("clients", [])} - front
    rules |= {(s["group"], s["peers_port"], c) for s in lb.values() if s.get("peers_port") for c in peers}
    rules |= {(s["group"], s["port"], "lb") for s in lb.values()}
    return rules


@pytest.mark.parametrize("counts", [{}, CELERY], ids=["defaults", "celery"])
def test_every_rule_names_an_nsg_that_is_created(tf, counts):
    model = _model(tf, counts)
    nsgs = set(model.for_each(model.resource(NSG, "service")))
    # An NSG for every instance group, hosts or not (an empty one admits no one).
    assert nsgs == INSTANCE_GROUPS
    rules = model.instances("oci_core_network_security_group_security_rule", "ingress")
    targets = {_nsg_group(r["network_security_group_id"]) for r in rules.values()}
    sources = {_nsg_group(r["source"]) for r in rules.values() if r["source_type"] == "NETWORK_SECURITY_GROUP"}
    assert targets | sources <= nsgs | {DB_GROUP, "lb"}
    got = {
        (_nsg_group(r["network_security_group_id"]), _port(r), _nsg_group(r["source"]))
        for r in rules.values()
        if r["source_type"] == "NETWORK_SECURITY_GROUP"
    }
    assert got == _expected_nsg_sourced_rules()
    # The new services, spelled out: Redis from the airflow hosts and the
    # workers, the workers' log server from the airflow hosts, and the
    # workers reaching MySQL, MLflow, Airflow's API and the edge's peers' port.
    for rule in [
        ("broker", 6379, "airflow"),
        ("broker", 6379, "airflow_worker"),
        ("airflow_worker", 8793, "airflow"),
        (DB_GROUP, 3306, "airflow_worker"),
        ("mlflow", 5000, "airflow_worker"),
        ("airflow", 8080, "airflow_worker"),
        ("edge", SERVICES["edge"]["peers_port"], "airflow_worker"),
    ]:
        assert rule in got, rule
    # Nothing else opens the new ports: not from a CIDR, not on another NSG.
    for r in rules.values():
        if _port(r) in (6379, 8793):
            assert r["source_type"] == "NETWORK_SECURITY_GROUP", r
    egress = model.instances("oci_core_network_security_group_security_rule", "egress")
    assert {_nsg_group(r["network_security_group_id"]) for r in egress.values()} == INSTANCE_GROUPS


def test_a_configuration_without_the_nsgs_of_empty_groups_would_be_caught(tf):
    """The negative control of the test above: NSGs only for groups with hosts
    break the rules naming the empty groups' NSGs (Terraform: Invalid index)."""
    variant = copy.deepcopy(tf)
    body = variant.parsed["security.tf"]["resource"][0]['"oci_core_network_security_group"']['"service"']
    assert body["for_each"] == "${toset(local.instance_group_names)}"
    body["for_each"] = "${toset([for g in local.instance_group_names : g if local.group_counts[g] > 0])}"
    model = _model(variant)
    with pytest.raises(hcleval.EvalError, match="airflow_worker|broker"):
        model.local("ingress_rules")


# --------------------------------------------------------------------------
# Instances, tags, images, load balancer
# --------------------------------------------------------------------------
@pytest.mark.parametrize("counts", [{}, CELERY], ids=["defaults", "celery"])
def test_instances_follow_the_counts_with_their_group_tag_and_nsg(tf, counts):
    model = _model(tf, counts)
    groups = model.vars["instance_groups"]
    instances = model.instances("oci_core_instance", "this")
    want = {f"{g}-{i}" for g, spec in groups.items() for i in range(1, spec["count"] + 1)}
    assert set(instances) == want
    for key, inst in instances.items():
        group = key.rsplit("-", 1)[0]
        assert inst["freeform_tags"]["ansible_group"] == group
        assert list(inst["defined_tags"].values()) == [group]
        assert [_nsg_group(n) for n in inst["create_vnic_details"][0]["nsg_ids"]] == [group]
        assert (inst["shape_config"][0]["ocpus"], inst["shape_config"][0]["memory_in_gbs"]) == (
            groups[group]["ocpus"],
            groups[group]["memory_gbs"],
        )
        assert inst["display_name"].isidentifier(), inst["display_name"]
    # Hostname labels: RFC 952/1123 (letters and digits; no underscore), unique in the subnet.
    labels = [inst["create_vnic_details"][0]["hostname_label"] for inst in instances.values()]
    assert all(re.fullmatch(r"[a-z][a-z0-9]{0,62}", label) for label in labels), labels
    assert len(set(labels)) == len(labels)
    # The defined tag's allowed values are the instance groups, the empty ones too.
    tag = tf.resources("oci_identity_tag")[("oci_identity_tag", "ansible_group")]
    (validator,) = hcleval.value_of(tag["validator"], model.scope())
    assert validator["values"] == sorted(INSTANCE_GROUPS)


def test_images_are_looked_up_only_for_the_shapes_of_groups_with_hosts(tf):
    groups = _default_groups(tf)
    groups["airflow_worker"]["shape"] = "VM.Standard.A1.Flex"
    model = _model(tf, groups=groups)
    images = tf.data("oci_core_images")["os"]
    assert set(model.for_each(images)) == {"VM.Standard.E4.Flex"}
    assert set(_model(tf, CELERY, groups=groups).for_each(images)) == {"VM.Standard.E4.Flex", "VM.Standard.A1.Flex"}


@pytest.mark.parametrize("counts", [{}, CELERY], ids=["defaults", "celery"])
def test_the_load_balancer_serves_the_edge_hosts_only(tf, counts):
    model = _model(tf, counts)
    assert list(model.instances("oci_load_balancer_listener", "https")) == ["edge"]
    backends = model.instances("oci_load_balancer_backend", "service")
    edges = {k for k, v in model.local("instances").items() if v["group"] == "edge"}
    assert {b["ip_address"] for b in backends.values()} == {f"<oci_core_instance.this[{k}].private_ip>" for k in edges}
    assert model.failed_preconditions("oci_load_balancer_load_balancer", "this") == []


# --------------------------------------------------------------------------
# IAM and the rendered inventory variables
# --------------------------------------------------------------------------
def test_the_workers_read_the_dag_bucket_like_the_airflow_hosts(tf):
    """Celery workers run the DAGs: the same DAG sync (instance principal), the
    same read-only grant, their own dynamic group (created with or without hosts)."""
    model = _model(tf)
    assert "airflow_worker" in model.instances("oci_identity_dynamic_group", "this")
    statements = tt._statements(tf.resources("oci_identity_policy")[("oci_identity_policy", "instances")])
    workers = [s for s in statements if 'dynamic_group.this["airflow_worker"]' in s]
    airflow = [s for s in statements if 'dynamic_group.this["airflow"]' in s]
    assert workers == [s.replace('this["airflow"]', 'this["airflow_worker"]') for s in airflow]
    for stmt in workers:
        assert re.match(r"Allow dynamic-group \S+ to read (buckets|objects) ", stmt), stmt
        assert stmt.endswith("'${local.dags_bucket}'"), stmt
    assert not [s for s in statements if 'this["broker"]' in s], "the broker needs no OCI API"


@pytest.mark.parametrize("counts", [{}, CELERY], ids=["defaults", "celery"])
def test_the_inventory_carries_the_new_services_client_cidrs(tf, counts):
    """infra.yml rendered with what local.service_client_cidr_vars evaluates to."""
    model = _model(tf, counts)
    cidr_vars = model.local("service_client_cidr_vars")
    text = (TF_DIR / "templates" / "infra.yml.tftpl").read_text(encoding="utf-8")
    data = yaml.safe_load(tftpl.render(text, {**tt.INFRA_VARS, "service_firewall_vars": cidr_vars}))
    assert data["broker_client_cidrs"] == [PRIVATE_SUBNET]
    assert data["airflow_worker_client_cidrs"] == [PRIVATE_SUBNET]
    assert data["edge_client_cidrs"] == [PUBLIC_SUBNET]
    # The same as the tests' own computation from the topology.
    assert sorted(cidr_vars, key=str) == sorted(tt.CLIENT_CIDR_VARS, key=str)
