"""The Terraform configuration against what the Ansible side needs, read
statically: the HCL is parsed with python-hcl2 (no terraform binary, no
provider), literal data is compared with the roles, and the wiring of
expressions (which resource reads which local/variable) is checked by shape.
"""

from __future__ import annotations

import re

import oci_inventory_plugin
import pytest
import tftpl
import yaml
from conftest import ROOT, TF_DIR, unquote

# The topology file both Terraform and Ansible read (its header says why there).
TOPOLOGY_PATH = ROOT / "ansible" / "roles" / "platform_defaults" / "defaults" / "main" / "topology.yml"
TOPOLOGY = yaml.safe_load(TOPOLOGY_PATH.read_text(encoding="utf-8"))["oci_mlops_topology"]
# What replaces a managed group's hosts on OCI (the resource Terraform creates).
MANAGED = {
    "db": "oci_mysql_mysql_db_system",
    "objectstore": "oci_objectstorage_bucket",
}
SSH = 22
WORLD = "0.0.0.0/0"
SERVICES = TOPOLOGY["services"]
INSTANCE_GROUPS = {g for g, spec in TOPOLOGY["groups"].items() if spec["oci"] == "instances"}
# What the locals compute from the topology, computed here independently.
# The groups users reach (published services on instances), behind the load balancer.
PUBLIC_GROUPS = {svc["group"] for svc in SERVICES.values() if svc["published"] and svc["group"] in INSTANCE_GROUPS}
# Groups with an NSG: the instance groups' and the managed DB System's.
NSG_GROUPS = INSTANCE_GROUPS | {SERVICES["mysql"]["group"]}
# {group: the ports it publishes (port and http_port)}.
PUBLISHED_PORTS = {
    g: sorted(
        {
            p
            for svc in SERVICES.values()
            if svc["group"] == g and svc["published"]
            for p in (svc["port"], svc.get("http_port"))
        }
        - {None}
    )
    for g in INSTANCE_GROUPS
}
# {(group, port): client groups} of the private services behind an NSG.
PRIVATE_PORTS = {
    (svc["group"], svc["port"]): set(svc.get("clients", []))
    for svc in SERVICES.values()
    if not svc["published"] and svc["group"] in NSG_GROUPS
}


def _code(text: str) -> str:
    return re.sub(r"\s+", " ", text)


# --------------------------------------------------------------------------
# Topology: Terraform reads it instead of restating groups and ports
# --------------------------------------------------------------------------
def test_terraform_reads_the_topology_file(tf):
    expr = tf.locals()["topology"]
    path = "${path.module}/../ansible/roles/platform_defaults/defaults/main/topology.yml"
    assert expr == '${yamldecode(file("' + path + '")).oci_mlops_topology}'
    assert TOPOLOGY_PATH.is_file()
    names = tf.locals()["instance_group_names"]
    assert "local.topology.groups" in names and 'spec.oci == "instances"' in names


def test_no_group_name_or_port_is_restated(tf):
    """Group names and service ports appear in the .tf code only through the topology."""
    ports = {str(p) for s in SERVICES.values() for p in (s["port"], s.get("http_port")) if p}
    for path in tf.files:
        code = re.sub(r"#.*", "", path.read_text(encoding="utf-8"))
        # Not restatements either: the egress rules' outbound HTTPS/HTTP to the
        # internet (packages, PyPI, OCI APIs), whatever the edge listens on.
        code = re.sub(r"egress_rules = merge\(\[.*?\]\.\.\.\)", "", code, flags=re.S)
        # Nor the load balancer's bandwidth range (Mbps, 10 to 8000).
        code = re.sub(r'variable "lb_\w+_bandwidth_mbps" \{.*?\n\}', "", code, flags=re.S)
        # Not restatements: resource labels, and the IAM grants' look-ups of one
        # group's dynamic group (what each group may do with each bucket is policy).
        code = re.sub(r'resource "\w+" "\w+"', "", code)
        code = re.sub(r'oci_identity_dynamic_group\.this\["\w+"\]', "", code)
        for group in TOPOLOGY["groups"]:
            assert not re.search(rf'"{group}"', code), f"{path.name} names group {group!r}"
        for port in ports:
            assert not re.search(rf"\b{port}\b", code), f"{path.name} restates port {port}"


def test_every_topology_group_is_instances_or_a_managed_service(tf):
    kinds = {g: spec["oci"] for g, spec in TOPOLOGY["groups"].items()}
    assert set(kinds.values()) <= {"instances", "managed"}, kinds
    for group, kind in kinds.items():
        if kind == "managed":
            assert group in MANAGED, f"{group} is managed on OCI: which service replaces it?"
            assert tf.resources(MANAGED[group]), f"{group}: no {MANAGED[group]}"
    # Every instance group has a default size, and the sizes cover exactly those groups.
    want = {g for g, k in kinds.items() if k == "instances"}
    var = tf.variables()["instance_groups"]
    assert set(var["default"]) == want
    nsg = tf.resources("oci_core_network_security_group")[("oci_core_network_security_group", "service")]
    assert nsg["for_each"] == "${toset(local.instance_group_names)}"
    conditions = [p["condition"] for p in nsg["lifecycle"][0]["precondition"]]
    assert any("sort(keys(var.instance_groups)) == local.instance_group_names" in c for c in conditions)


def test_instances_are_tagged_with_their_group(tf):
    inst = tf.resources("oci_core_instance")
    assert list(inst) == [("oci_core_instance", "this")], "one instance resource, for_each over local.instances"
    body = inst[("oci_core_instance", "this")]
    assert body["for_each"] == "${local.instances}"
    assert re.search(r"for group in local\.instance_group_names", tf.locals()["instances"])
    assert re.search(r"group\s*=\s*group", tf.locals()["instances"])
    assert "ansible_group = each.value.group" in body["freeform_tags"]
    assert "local.common_tags" in body["freeform_tags"]
    tags = tf.locals()["common_tags"]
    assert tags == {"project": "${var.project}", "environment": "${var.environment}"}


def test_nsg_ports_are_the_topology_published_ports(tf):
    """The load balancer's ports are the published services' port and http_port."""
    expr = _code(tf.locals()["lb_ports"])
    assert "for name, svc in local.lb_services" in expr
    assert "for port in [svc.port, try(svc.http_port, null)] : port if port != null" in expr
    services = _code(tf.locals()["lb_services"])
    assert "if svc.published && contains(local.instance_group_names, svc.group)" in services


def test_managed_db_port_and_clients_come_from_the_topology(tf):
    assert tf.locals()["db_service"] == "${local.topology.services.mysql}"
    assert tf.locals()["db_port"] == "${local.db_service.port}"
    (db,) = tf.resources("oci_mysql_mysql_db_system").values()
    assert db["port"] == "${local.db_port}"
    mysql = SERVICES["mysql"]
    assert TOPOLOGY["groups"][mysql["group"]]["oci"] == "managed"
    assert set(mysql["clients"]) <= INSTANCE_GROUPS
    # The DB System's NSG is its group's in the NSG map the private-service rules use.
    assert tf.locals()["nsg_groups"] == "${concat(local.instance_group_names, [local.db_service.group])}"
    assert "(local.db_service.group) = oci_core_network_security_group.db.id" in _code(tf.locals()["group_nsg_ids"])


def _ingress_rules(tf):
    return {
        name: body
        for (_, name), body in tf.resources("oci_core_network_security_group_security_rule").items()
        if unquote(body["direction"]) == "INGRESS"
    }


def test_ingress_rules_are_one_resource_over_published_client_and_ssh_rules(tf):
    rules = _ingress_rules(tf)
    assert set(rules) == {"ingress"}, sorted(rules)
    rule = rules["ingress"]
    assert rule["for_each"] == "${local.ingress_rules}"
    assert tf.locals()["ingress_rules"] == (
        "${merge(local.lb_rules, local.published_rules, local.client_rules, local.peer_rules, local.ssh_rules)}"
    )
    assert rule["network_security_group_id"] == "${each.value.nsg_id}"
    assert rule["source_type"] == "${each.value.source_type}"
    assert rule["source"] == "${each.value.source}"
    assert unquote(rule["protocol"]) == "6" and rule["stateless"] is False
    rng = rule["tcp_options"][0]["destination_port_range"][0]
    assert (rng["min"], rng["max"]) == ("${each.value.port}", "${each.value.port}")
    nsg_ids = _code(tf.locals()["group_nsg_ids"])
    instance_nsgs = "for group in local.instance_group_names : group => "
    instance_nsgs += "oci_core_network_security_group.service[group].id"
    assert instance_nsgs in nsg_ids

    # The CIDR sources reach the load balancer's NSG only (test_network_shape.py
    # has the rest of the front door's rules).
    lb = _code(tf.locals()["lb_rules"])
    assert "setproduct(local.lb_ports, local.service_sources)" in lb
    assert "nsg_id = oci_core_network_security_group.lb.id, port = pair[0]," in lb
    assert 'source_type = "CIDR_BLOCK", source = pair[1]' in lb

    ssh = _code(tf.locals()["ssh_rules"])
    assert "for group in local.instance_group_names" in ssh
    assert f'port = {SSH}, source_type = "CIDR_BLOCK", source = local.bastion_source' in ssh


def test_each_private_service_admits_exactly_its_clients_nsgs(tf):
    """Private ports: one rule per client group, sourced from that group's NSG,
    on the service group's NSG; no CIDR rule ever opens them."""
    private = _code(tf.locals()["private_services"])
    assert "for name, svc in local.topology.services : name => svc" in private
    assert "if !svc.published && contains(local.nsg_groups, svc.group)" in private
    clients = _code(tf.locals()["client_rules"])
    assert "for name, svc in local.private_services" in clients
    assert "for client in try(svc.clients, [])" in clients
    assert "nsg_id = local.group_nsg_ids[svc.group], port = svc.port," in clients
    assert 'source_type = "NETWORK_SECURITY_GROUP", source = local.group_nsg_ids[client],' in clients
    # The CIDR-sourced rules are the load balancer's and SSH's only.
    assert "local.private_services" not in _code(tf.locals()["lb_rules"])
    # Every client has an NSG (precondition on the service NSGs).
    nsg = tf.resources("oci_core_network_security_group")[("oci_core_network_security_group", "service")]
    conditions = " ".join(_code(p["condition"]) for p in nsg["lifecycle"][0]["precondition"])
    assert "contains(local.instance_group_names, client)" in conditions
    # What that is today: each private port, from exactly its clients; no
    # published port shares a (group, port) with a private one.
    assert PRIVATE_PORTS, "no private service behind an NSG"
    for (group, port), groups in PRIVATE_PORTS.items():
        assert groups, f"{group}:{port} is private with no client: closed to everyone"
        assert groups <= INSTANCE_GROUPS, (group, port, groups)
        assert port not in PUBLISHED_PORTS.get(group, []), (group, port)


def test_web_ports_only_on_the_public_groups(tf):
    """The published (web) ports are opened on the public groups' NSGs only,
    and the public groups are the front door alone."""
    assert PUBLIC_GROUPS == {"edge"}, PUBLIC_GROUPS
    assert {g for g, ports in PUBLISHED_PORTS.items() if ports} == PUBLIC_GROUPS
    edge = SERVICES["edge"]
    assert edge["published"] and PUBLISHED_PORTS["edge"] == sorted({edge["port"], edge["http_port"]})
    # No other service is published: they are reached through the edge's routes.
    for name, svc in SERVICES.items():
        if name != "edge":
            assert svc["published"] is False, name
            assert "http_port" not in svc, name


def test_no_world_open_ssh_or_mysql_anywhere(tf):
    # No security list (default or not) carries an ingress rule but ICMP
    # (path MTU discovery, test_network_shape.py).
    for rtype in ("oci_core_security_list", "oci_core_default_security_list"):
        for key, body in tf.resources(rtype).items():
            for rule in body.get("ingress_security_rules", []):
                assert rule["protocol"] == "${local.icmp}", f"{key} has a non-ICMP ingress rule"
    assert unquote(tf.locals()["icmp"]) == "1"
    # Literal sources of every ingress rule are never the world.
    for name, body in _ingress_rules(tf).items():
        assert unquote(body["source"]) != WORLD, name
    # The only CIDR-sourced rules on 22 come from the bastion's endpoint; the
    # bastion admits admin_ssh_cidr, which has no default and refuses /0.
    admin = tf.variables()["admin_ssh_cidr"]
    assert "default" not in admin
    assert any('!endswith(var.admin_ssh_cidr, "/0")' in v["condition"] for v in admin["validation"])
    assert unquote(tf.variables()["vcn_cidr"]["default"]) != WORLD
    # MySQL only from NSGs (no CIDR source at all): it is a private service.
    assert (SERVICES["mysql"]["group"], SERVICES["mysql"]["port"]) in PRIVATE_PORTS
    # Nothing in the configuration uses 0.0.0.0/0 as an ingress source, but the
    # ICMP "fragmentation needed" rule of path MTU discovery.
    for fname in tf.parsed:
        text = (TF_DIR / fname).read_text(encoding="utf-8")
        for m in re.finditer(r'\bsource\s*=\s*"0\.0\.0\.0/0"', text):
            rule = text[text.rfind("ingress_security_rules", 0, m.start()) : text.find("}\n  }", m.end())]
            assert re.search(r"type\s*=\s*3\s+code\s*=\s*4", rule), (fname, rule)


# --------------------------------------------------------------------------
# Instances, database, buckets
# --------------------------------------------------------------------------
def test_instances_are_hardened_and_bare(tf):
    body = tf.resources("oci_core_instance")[("oci_core_instance", "this")]
    assert body["instance_options"][0]["are_legacy_imds_endpoints_disabled"] is True
    assert body["launch_options"][0]["is_pv_encryption_in_transit_enabled"] is True
    assert set(body["metadata"]) == {"ssh_authorized_keys"}, "no user_data / cloud-init"
    assert body["shape_config"][0]["ocpus"] == "${each.value.ocpus}"
    assert body["shape_config"][0]["memory_in_gbs"] == "${each.value.memory_gbs}"
    vnic = body["create_vnic_details"][0]
    assert vnic["nsg_ids"] == ["${oci_core_network_security_group.service[each.value.group].id}"]
    assert "data.oci_core_images.os" in body["source_details"][0]["source_id"]
    for path in tf.files:
        code = re.sub(r"#.*", "", path.read_text(encoding="utf-8"))
        assert not re.search(r"\buser_data\b", code), path.name
    images = tf.data("oci_core_images")["os"]
    assert images["operating_system"] == "${var.instance_os}"
    assert unquote(tf.variables()["instance_os"]["default"]) == "Oracle Linux"


def test_db_is_private_with_backups(tf):
    (body,) = tf.resources("oci_mysql_mysql_db_system").values()
    assert body["subnet_id"] == "${oci_core_subnet.private.id}"
    assert body["nsg_ids"] == ["${oci_core_network_security_group.db.id}"]
    assert body["admin_password"] == "${var.db_admin_password}"
    assert tf.variables()["db_admin_password"]["sensitive"] is True
    assert "default" not in tf.variables()["db_admin_password"]
    assert body["backup_policy"][0]["is_enabled"] is True
    private = tf.resources("oci_core_subnet")[("oci_core_subnet", "private")]
    assert private["prohibit_public_ip_on_vnic"] is True
    rt = tf.resources("oci_core_route_table")[("oci_core_route_table", "private")]
    targets = {r["network_entity_id"] for r in rt["route_rules"]}
    assert not any("internet_gateway" in t for t in targets), "private subnet routes to the internet gateway"


def test_buckets_are_private_versioned_with_events(tf):
    buckets = tf.resources("oci_objectstorage_bucket")
    assert {n for _, n in buckets} == {"artifacts", "dags", "backups", "task_logs"}
    for key, body in buckets.items():
        assert unquote(body["access_type"]) == "NoPublicAccess", key
        assert unquote(body["versioning"]) == "Enabled", key
        assert body["object_events_enabled"] is True, key
        assert body["kms_key_id"] == "${var.kms_key_id}", key


def test_iam_is_scoped_to_buckets(tf):
    policies = tf.resources("oci_identity_policy")
    statements = policies[("oci_identity_policy", "instances")]["statements"]
    text = str(statements)
    assert "dags_bucket" in text and "artifacts_bucket" in text
    for stmt in re.findall(r"Allow [^\"']+?(?=\"|',|$)", text):
        assert " in tenancy" not in stmt, stmt
    dg = tf.resources("oci_identity_dynamic_group")[("oci_identity_dynamic_group", "this")]
    assert "instance.compartment.id" in dg["matching_rule"] and "tag." in dg["matching_rule"]
    outs = {k: v for block in (d.get("output", []) for d in tf.parsed.values()) for b in block for k, v in b.items()}
    for name in ("s3_access_key", "s3_secret_key"):
        assert outs[unquote(name) if name in outs else f'"{name}"']["sensitive"] is True


def _statements(policy) -> list[str]:
    """The policy's statements as written (python-hcl2 keeps the interpolations)."""
    statements = policy["statements"]
    return [unquote(s) for s in statements] if isinstance(statements, list) else [unquote(statements)]


def test_the_airflow_instances_only_read_the_dag_bucket(tf):
    """Issue #15 point 3: the airflow instances' dynamic group gets read verbs
    on the DAG bucket and nothing else anywhere; writing is the publisher
    group's (the controller/CI), never an instance's."""
    policies = tf.resources("oci_identity_policy")
    statements = _statements(policies[("oci_identity_policy", "instances")])
    airflow = [s for s in statements if 'dynamic_group.this["airflow"]' in s]
    assert airflow, statements
    verbs = set()
    for stmt in airflow:
        match = re.match(r"Allow dynamic-group \S+ to (\w+) (\w+) (.*)$", stmt)
        assert match, stmt
        verbs.add((match.group(1), match.group(2)))
        # on the DAG bucket only, by name, in the project's compartment
        assert match.group(3) == "${local.bucket_in} '${local.dags_bucket}'", stmt
    assert verbs == {("read", "buckets"), ("read", "objects")}, verbs
    for stmt in airflow:
        for word in ("manage", "use ", "OBJECT_CREATE", "OBJECT_OVERWRITE", "OBJECT_DELETE", "request.permission"):
            assert word not in stmt, stmt
    # no variable can turn writing back on for the instances
    assert "allow_dag_publish_from_airflow" not in tf.variables()
    for (_, name), policy in policies.items():
        if name != "instances":
            assert not any("dynamic-group" in s and "dags_bucket" in s for s in _statements(policy)), name


def _rules(policy) -> dict:
    rules = policy["rules"] if isinstance(policy["rules"], list) else [policy["rules"]]
    return {unquote(r["name"]): r for r in rules}


def test_buckets_have_lifecycle_rules_for_retention(tf):
    """Issue #17 item 1: the backups bucket deletes objects past a retention
    and every previous version; the artifacts bucket only previous versions
    (MLflow owns its current objects) and abandoned uploads; Object Storage
    may apply them (its own policy on the compartment)."""
    policies = tf.resources("oci_objectstorage_object_lifecycle_policy")
    assert set(policies) == {
        ("oci_objectstorage_object_lifecycle_policy", "backups"),
        ("oci_objectstorage_object_lifecycle_policy", "artifacts"),
        ("oci_objectstorage_object_lifecycle_policy", "task_logs"),
    }
    backups = policies[("oci_objectstorage_object_lifecycle_policy", "backups")]
    assert backups["bucket"] == "${oci_objectstorage_bucket.backups.name}"
    rules = _rules(backups)
    by_target = {unquote(r["target"]): r for r in rules.values()}
    assert by_target["objects"]["time_amount"] == "${var.backups_retention_days}"
    assert unquote(by_target["objects"]["action"]) == "DELETE"
    assert by_target["previous-object-versions"]["time_amount"] == "${var.previous_versions_retention_days}"
    assert unquote(by_target["multipart-uploads"]["action"]) == "ABORT"
    for rule in rules.values():
        assert rule["is_enabled"] is True and unquote(rule["time_unit"]) == "DAYS"

    artifacts = policies[("oci_objectstorage_object_lifecycle_policy", "artifacts")]
    assert artifacts["bucket"] == "${oci_objectstorage_bucket.artifacts.name}"
    targets = {unquote(r["target"]) for r in _rules(artifacts).values()}
    assert targets == {"previous-object-versions", "multipart-uploads"}, "never delete MLflow's current artifacts"

    lifecycle = tf.resources("oci_identity_policy")[("oci_identity_policy", "lifecycle")]
    assert _statements(lifecycle) == [
        "Allow service objectstorage-${var.region} to manage object-family in compartment id ${var.compartment_ocid}"
    ]
    for body in policies.values():
        assert "oci_identity_policy.lifecycle" in str(body["depends_on"])


def test_only_the_mlflow_instances_write_the_backups_bucket(tf):
    """The backup role runs on the schemas host, the first mlflow host on OCI."""
    statements = _statements(tf.resources("oci_identity_policy")[("oci_identity_policy", "instances")])
    on_backups = [s for s in statements if "backups_bucket" in s]
    mlflow = '${oci_identity_dynamic_group.this["mlflow"].name}'
    backups = "${local.bucket_in} '${local.backups_bucket}'"
    assert on_backups == [
        f"Allow dynamic-group {mlflow} to read buckets {backups}",
        f"Allow dynamic-group {mlflow} to manage objects {backups}",
    ]


def test_backup_variables_feed_the_platform(tf):
    variables = tf.variables()
    for name in ("backups_bucket_name", "backups_retention_days", "previous_versions_retention_days"):
        assert name in variables, name
    defaults = (ROOT / "ansible/roles/platform_defaults/defaults/main/backup.yml").read_text(encoding="utf-8")
    assert 'oci_mlops_backups_bucket: "{{ infra_backups_bucket }}"' in defaults


def test_a_restored_db_system_replaces_the_endpoint_everywhere(tf):
    """A restore from a DB System backup or PITR creates a new DB System: one
    variable points the rendered inventory and the output at it."""
    assert "db_endpoint_override" in tf.variables()
    text = (TF_DIR / "database.tf").read_text(encoding="utf-8")
    assert "coalesce(var.db_endpoint_override, oci_mysql_mysql_db_system.this.ip_address)" in text
    assert _local_file(tf, "infra_vars")["content"].count("local.db_endpoint") == 1
    assert "ip_address" not in (TF_DIR / "inventory.tf").read_text(encoding="utf-8")


def test_the_dags_publisher_is_an_optional_group_scoped_to_the_dag_bucket(tf):
    policies = tf.resources("oci_identity_policy")
    publisher = policies[("oci_identity_policy", "dags_publisher")]
    assert publisher["count"] == "${var.dags_publisher_group == null ? 0 : 1}"
    statements = _statements(publisher)
    assert statements == [
        "Allow group ${var.dags_publisher_group} to read buckets ${local.bucket_in} '${local.dags_bucket}'",
        "Allow group ${var.dags_publisher_group} to manage objects ${local.bucket_in} '${local.dags_bucket}'",
    ]
    variable = tf.variables()["dags_publisher_group"]
    assert unquote(variable["type"]) in ("string", "${string}")
    assert variable["default"] is None


# --------------------------------------------------------------------------
# Variables and versions
# --------------------------------------------------------------------------
def test_variables_are_typed_and_documented(tf):
    for name, body in tf.variables().items():
        assert "type" in body, f"variable {name} has no type"
        assert unquote(body.get("description", "")).strip(), f"variable {name} has no description"


def test_versions_are_constrained(tf):
    (block,) = tf.terraform()
    assert block["required_version"]
    oci = block["required_providers"][0]["oci"]
    assert unquote(oci["source"]) == "oracle/oci"
    assert re.search(r"\d", unquote(oci["version"]))


# --------------------------------------------------------------------------
# The generated inventory
# --------------------------------------------------------------------------
# Options of the oracle.oci.oci inventory plugin: vendored from the real
# plugin's DOCUMENTATION with its version, checked against an installed
# collection (oci_inventory_plugin.py, test_defects.py).
PLUGIN_OPTIONS = oci_inventory_plugin.PLUGIN_OPTIONS
AUTH_TYPES = oci_inventory_plugin.AUTH_TYPES
INVENTORY_VARS = dict(
    auth_type="api_key",
    config_profile="DEFAULT",
    regions=["eu-frankfurt-1"],
    compartment_ocid="ocid1.compartment.oc1..aaaatest",
    project="oci-mlops",
    environment="prod",
)
INFRA_VARS = dict(
    region="eu-frankfurt-1",
    compartment_ocid="ocid1.compartment.oc1..aaaatest",
    namespace="axtestns",
    artifacts_bucket="oci-mlops-prod-mlflow-artifacts",
    dags_bucket="oci-mlops-prod-airflow-dags",
    backups_bucket="oci-mlops-prod-backups",
    task_logs_bucket="oci-mlops-prod-task-logs",
    db_endpoint="10.0.2.17",
    db_admin_user="mlopsadmin",
    vcn_cidr="10.0.0.0/16",
    ssh_sources=["10.0.2.9/32"],
    ansible_user="opc",
    front_door_names=["203.0.113.80"],
    lb_subnet_cidrs=["10.0.1.0/24"],
    bastion_id="ocid1.bastion.oc1.eu-frankfurt-1.aaaatest",
    bastion_host="host.bastion.eu-frankfurt-1.oci.oraclecloud.com",
    ssh_jump=True,
    ssh_common_args=(
        '-o ProxyCommand="ssh -W %h:%p -p 22 -o BatchMode=yes -o StrictHostKeyChecking=accept-new '
        '{{ infra_bastion_session_id }}@host.bastion.eu-frankfurt-1.oci.oraclecloud.com"'
    ),
)
SUBNETS = {"public": "10.0.1.0/24", "private": "10.0.2.0/24"}
# What local.service_client_cidr_vars evaluates to: the topology's naming rule
# applied to the services on instances; a published one admits the load
# balancer's (public) subnet, a private one its clients' subnets (all private).
CLIENT_CIDR_VARS = [
    {
        "name": TOPOLOGY["client_cidrs_variable"] % svc["role"],
        "cidrs": [SUBNETS["public"]]
        if svc["published"]
        else sorted({SUBNETS["private"] for c in svc.get("clients", [])}),
    }
    for svc in SERVICES.values()
    if svc["group"] in INSTANCE_GROUPS
]
INFRA_VARS["service_firewall_vars"] = CLIENT_CIDR_VARS


def _local_file(tf, name):
    return tf.resources("local_file")[("local_file", name)]


def _templatefile_args(body):
    """Names passed to templatefile(...) in a local_file's content."""
    return set(re.findall(r"\b([a-z_]+)\s*=", body["content"].split("{", 1)[1]))


def test_inventory_renders_to_a_valid_plugin_config(tf):
    body = _local_file(tf, "inventory")
    assert re.search(r'\.oci\.yml"?$', unquote(body["filename"])), body["filename"]
    assert "templates/inventory.oci.yml.tftpl" in body["content"]
    text = (TF_DIR / "templates" / "inventory.oci.yml.tftpl").read_text(encoding="utf-8")
    assert tftpl.referenced_names(text) <= _templatefile_args(body)
    cfg = yaml.safe_load(tftpl.render(text, INVENTORY_VARS))

    assert set(cfg) <= PLUGIN_OPTIONS, set(cfg) - PLUGIN_OPTIONS
    assert cfg["plugin"] == "oracle.oci.oci"
    assert cfg["auth_type"] in AUTH_TYPES
    assert cfg["regions"] == INVENTORY_VARS["regions"]
    assert cfg["compartments"] == [
        {"compartment_ocid": INVENTORY_VARS["compartment_ocid"], "fetch_hosts_from_subcompartments": False}
    ]
    # Every host has a private IP; only the edge has a public one.
    assert cfg["hostname_format"] == "private_ip"
    assert isinstance(cfg["filters"], list) and cfg["filters"]
    for f in cfg["filters"]:
        assert isinstance(f, dict) and len(f) == 1, f
    assert {"freeform_tags": {"project": "oci-mlops", "environment": "prod"}} in cfg["filters"]
    assert cfg["keyed_groups"] == [{"key": "freeform_tags.ansible_group", "prefix": "", "separator": ""}]


def test_inventory_variables_match_the_terraform_choices(tf):
    var = tf.variables()
    assert "inventory_hostname_format" not in var, "hosts are always named by private IP"
    assert unquote(var["inventory_ssh_jump"]["type"]) in ("bool", "${bool}")
    assert var["inventory_ssh_jump"]["default"] is True
    auth = re.findall(r'"([a-z_]+)"', var["inventory_auth_type"]["validation"][0]["condition"])
    assert set(auth) <= AUTH_TYPES


def test_infra_vars_render_with_everything_the_playbooks_read(tf):
    body = _local_file(tf, "infra_vars")
    assert unquote(body["filename"]).endswith("/group_vars/all/infra.yml")
    text = (TF_DIR / "templates" / "infra.yml.tftpl").read_text(encoding="utf-8")
    assert tftpl.referenced_names(text) <= _templatefile_args(body)
    data = yaml.safe_load(tftpl.render(text, INFRA_VARS))

    required = {
        "infra_db_endpoint",
        "infra_db_admin_user",
        "infra_namespace",
        "infra_region",
        "infra_compartment_ocid",
        "infra_artifacts_bucket",
        "infra_dags_bucket",
        "infra_backups_bucket",
        "infra_task_logs_bucket",
        "infra_vcn_cidr",
    }
    assert required <= set(data)
    # Every infra_* variable the platform's defaults and the roles read is provided.
    used = set()
    for path in (ROOT / "ansible" / "roles").rglob("defaults/**/*.yml"):
        used |= set(re.findall(r"\binfra_[a-z_]+", path.read_text(encoding="utf-8")))
    assert used <= set(data), used - set(data)
    assert data["firewalld_ssh_sources"] == ["10.0.2.9/32"]
    # The services' client CIDRs, named by the topology's rule: a published
    # service admits the NSGs' sources, a private one its clients' subnets.
    assert body["content"].count("service_firewall_vars = local.service_client_cidr_vars") == 1
    expr = _code(tf.locals()["service_client_cidr_vars"])
    assert "format(local.topology.client_cidrs_variable, svc.role)" in expr
    assert "svc.published ? [var.public_subnet_cidr]" in expr
    assert "for client in try(svc.clients, []) : local.group_subnet_cidrs[client]" in expr
    assert "if contains(local.instance_group_names, svc.group)" in expr
    subnets = _code(tf.locals()["group_subnet_cidrs"])
    assert "group => var.private_subnet_cidr" in subnets
    assert CLIENT_CIDR_VARS, "no service on instances"
    for entry in CLIENT_CIDR_VARS:
        assert data[entry["name"]] == entry["cidrs"], entry["name"]
        role = entry["name"].removesuffix("_client_cidrs")
        specs = yaml.safe_load((ROOT / "ansible" / "roles" / role / "meta" / "argument_specs.yml").read_text())
        assert entry["name"] in specs["argument_specs"]["main"]["options"], f"{entry['name']} is no input of {role}"
    # Today: the edge open to the load balancer's subnet, the backends to the
    # subnets of their clients only (all in the private one, the edge too).
    by_name = {e["name"]: e["cidrs"] for e in CLIENT_CIDR_VARS}
    assert by_name["edge_client_cidrs"] == [SUBNETS["public"]]
    assert by_name["mlflow_client_cidrs"] == [SUBNETS["private"]]
    assert by_name["airflow_client_cidrs"] == [SUBNETS["private"]]
    # The edge role's server names.
    assert data["edge_server_names"] == INFRA_VARS["front_door_names"]
    specs = yaml.safe_load((ROOT / "ansible" / "roles" / "edge" / "meta" / "argument_specs.yml").read_text())
    assert "edge_server_names" in specs["argument_specs"]["main"]["options"]
    assert body["content"].count("front_door_names = local.front_door_names") == 1
    assert data["common_ntp_servers"] == ["169.254.169.254"]
    assert WORLD not in data["firewalld_ssh_sources"]
    # No secret is written.
    assert not [k for k in data if re.search(r"password|secret|vault_|access_key", k)]


@pytest.mark.parametrize("jump", [True, False])
def test_infra_vars_ssh_through_the_bastion_only_when_asked(tf, jump):
    text = (TF_DIR / "templates" / "infra.yml.tftpl").read_text(encoding="utf-8")
    data = yaml.safe_load(tftpl.render(text, {**INFRA_VARS, "ssh_jump": jump}))
    if jump:
        args = data["ansible_ssh_common_args"]
        assert args == INFRA_VARS["ssh_common_args"]
        # What Ansible's ssh plugin does with it (shlex): one ProxyCommand option.
        import shlex

        assert shlex.split(args) == [
            "-o",
            "ProxyCommand=ssh -W %h:%p -p 22 -o BatchMode=yes -o StrictHostKeyChecking=accept-new "
            "{{ infra_bastion_session_id }}@host.bastion.eu-frankfurt-1.oci.oraclecloud.com",
        ]
        # The session OCID comes from the environment at run time, failing by name without it.
        session = data["infra_bastion_session_id"]
        assert "lookup('ansible.builtin.env', 'OCI_BASTION_SESSION_ID')" in session
        assert "undef(hint='OCI_BASTION_SESSION_ID is not set" in session
    else:
        assert "ansible_ssh_common_args" not in data
        assert "infra_bastion_session_id" not in data
    assert data["infra_bastion_id"] == INFRA_VARS["bastion_id"]
    assert "ssh_jump = var.inventory_ssh_jump" in _local_file(tf, "infra_vars")["content"]
