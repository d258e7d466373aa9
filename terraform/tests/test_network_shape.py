"""The production network shape on OCI against the one topology source
(ansible/roles/platform_defaults/defaults/main/topology.yml), read statically.

Same shape as the lab: the lab's edge host is the front door in front of
private backends; on OCI a load balancer in the public subnet is the only
public entry, in front of the edge hosts (which keep the lab's routing), and
SSH comes only through the OCI Bastion service. Every instance is private,
with egress through the NAT gateway and Oracle services through the service
gateway, and the default security list keeps ICMP type 3 code 4 (path MTU
discovery).
"""

from __future__ import annotations

import re

import yaml
from conftest import ROOT, TF_DIR, unquote

TOPOLOGY = yaml.safe_load(
    (ROOT / "ansible" / "roles" / "platform_defaults" / "defaults" / "main" / "topology.yml").read_text(
        encoding="utf-8"
    )
)["oci_mlops_topology"]
SERVICES = TOPOLOGY["services"]
INSTANCE_GROUPS = {g for g, spec in TOPOLOGY["groups"].items() if spec["oci"] == "instances"}
# What local.lb_services selects, computed here from the topology.
LB_SERVICES = {n: s for n, s in SERVICES.items() if s["published"] and s["group"] in INSTANCE_GROUPS}
# The load balancer's ports: each published service's port and http_port.
LB_PORTS = sorted({p for s in LB_SERVICES.values() for p in (s["port"], s.get("http_port")) if p is not None})
ROUTED = {n: s for n, s in SERVICES.items() if s.get("route")}


def _code(text) -> str:
    return re.sub(r"\s+", " ", str(text))


def _res(tf, rtype, name):
    return tf.resources(rtype)[(rtype, name)]


def _files_code(tf):
    """{file name: its code without comments}."""
    return {p.name: re.sub(r"#.*", "", p.read_text(encoding="utf-8")) for p in tf.files}


# --------------------------------------------------------------------------
# The topology's front door is what the load balancer serves
# --------------------------------------------------------------------------
def test_the_topology_has_a_front_door_the_load_balancer_can_serve():
    assert LB_SERVICES, "no published service on instances: nothing behind the load balancer"
    # Listener ports are unique on a load balancer.
    ports = [p for s in LB_SERVICES.values() for p in (s["port"], s.get("http_port")) if p is not None]
    assert len(ports) == len(set(ports)), ports
    # Every routed service is reached through the front door's group (the
    # edge routes it), so the published URLs keep the lab's shape.
    front = {s["group"] for s in LB_SERVICES.values()}
    for name, svc in ROUTED.items():
        assert not svc["published"], f"{name} is routed by the edge, not published itself"
        assert set(svc.get("clients", [])) & front, f"{name}: the front door's hosts are not among its clients"


def test_lb_services_and_ports_are_derived_from_the_topology(tf):
    services = _code(tf.locals()["lb_services"])
    assert "for name, svc in local.topology.services : name => svc" in services
    assert "if svc.published && contains(local.instance_group_names, svc.group)" in services
    ports = _code(tf.locals()["lb_ports"])
    assert "for name, svc in local.lb_services" in ports
    assert "for port in [svc.port, try(svc.http_port, null)] : port if port != null" in ports
    redirects = _code(tf.locals()["lb_redirects"])
    assert "for name, svc in local.lb_services : name => svc if try(svc.http_port, null) != null" in redirects


def test_the_load_balancer_is_flexible_public_and_in_the_public_subnet(tf):
    lbs = tf.resources("oci_load_balancer_load_balancer")
    assert list(lbs) == [("oci_load_balancer_load_balancer", "this")]
    lb = lbs[("oci_load_balancer_load_balancer", "this")]
    assert unquote(lb["shape"]) == "flexible"
    shape = lb["shape_details"][0]
    assert shape["minimum_bandwidth_in_mbps"] == "${var.lb_min_bandwidth_mbps}"
    assert shape["maximum_bandwidth_in_mbps"] == "${var.lb_max_bandwidth_mbps}"
    assert lb["is_private"] is False
    assert lb["subnet_ids"] == ["${oci_core_subnet.public.id}"]
    assert lb["network_security_group_ids"] == ["${oci_core_network_security_group.lb.id}"]
    conditions = " ".join(_code(p["condition"]) for p in lb["lifecycle"][0]["precondition"])
    assert "var.lb_min_bandwidth_mbps <= var.lb_max_bandwidth_mbps" in conditions
    assert "length(local.lb_services) > 0" in conditions
    variables = tf.variables()
    for name in ("lb_min_bandwidth_mbps", "lb_max_bandwidth_mbps"):
        assert 10 <= variables[name]["default"] <= 8000, name
    assert variables["lb_min_bandwidth_mbps"]["default"] <= variables["lb_max_bandwidth_mbps"]["default"]


def test_every_published_service_has_a_backend_set_on_its_port_with_its_health_check(tf):
    bs = _res(tf, "oci_load_balancer_backend_set", "service")
    assert bs["for_each"] == "${local.lb_services}"
    assert bs["name"] == "${each.key}"
    hc = bs["health_checker"][0]
    # The topology's port; an HTTP check on the topology's health_path when the
    # service has one, else TCP on the port (what the edge role waits for).
    assert hc["port"] == "${each.value.port}"
    assert hc["protocol"] == '${try(each.value.health_path, null) == null ? "TCP" : "HTTP"}'
    assert hc["url_path"] == "${try(each.value.health_path, null)}"
    # No literal port or path anywhere in the health check.
    for key, value in hc.items():
        if isinstance(value, str) and key not in ("protocol",):
            for svc in LB_SERVICES.values():
                assert str(svc["port"]) not in value, (key, value)
    edge_role = (ROOT / "ansible" / "roles" / "edge" / "tasks" / "main.yml").read_text(encoding="utf-8")
    for svc in LB_SERVICES.values():
        if "health_path" not in svc:
            # The role's own readiness check is the port: the same as the load balancer's.
            assert "edge_https_port" in edge_role and "wait_for" in edge_role
    # Re-encrypted to the service's TLS port.
    assert bs["ssl_configuration"][0]["protocols"] == "${var.lb_tls_protocols}"


def test_backends_are_every_instance_of_each_published_group(tf):
    backends = _code(tf.locals()["lb_backends"])
    assert "for name, svc in local.lb_services" in backends
    assert "for key, inst in local.instances" in backends
    assert "if inst.group == svc.group" in backends
    be = _res(tf, "oci_load_balancer_backend", "service")
    assert be["for_each"] == "${local.lb_backends}"
    assert be["backendset_name"] == "${oci_load_balancer_backend_set.service[each.value.service].name}"
    assert be["ip_address"] == "${oci_core_instance.this[each.value.instance].private_ip}"
    assert be["port"] == "${local.lb_services[each.value.service].port}"
    # local.instances has var.instance_groups[<group>].count entries per group
    # (none for a group of count 0; tests/test_optional_groups.py evaluates it).
    instances = _code(tf.locals()["instances"])
    assert "for i in range(local.group_counts[group])" in instances
    counts = _code(tf.locals()["group_counts"])
    assert "for group in local.instance_group_names : group => try(var.instance_groups[group].count, 0)" in counts


def test_https_listener_per_published_service_with_the_certificates_service_certificate(tf):
    ls = _res(tf, "oci_load_balancer_listener", "https")
    assert ls["for_each"] == "${local.lb_services}"
    assert ls["port"] == "${each.value.port}"
    assert unquote(ls["protocol"]) == "HTTP"
    assert ls["default_backend_set_name"] == "${oci_load_balancer_backend_set.service[each.key].name}"
    ssl = ls["ssl_configuration"][0]
    assert ssl["certificate_ids"] == ["${var.lb_certificate_id}"]
    assert "certificate_name" not in ssl, "an imported certificate would put its private key in the state"
    assert ssl["protocols"] == "${var.lb_tls_protocols}"
    cert = tf.variables()["lb_certificate_id"]
    assert "default" not in cert
    assert "ocid1\\\\.certificate\\\\." in cert["validation"][0]["condition"]
    assert "lb_certificate_id" in cert["validation"][0]["error_message"]
    protocols = tf.variables()["lb_tls_protocols"]
    assert {unquote(v) for v in protocols["default"]} <= {"TLSv1.2", "TLSv1.3"}
    # No private key or imported certificate anywhere.
    assert not tf.resources("oci_load_balancer_certificate")
    # Idle connections live as long as the edge's websocket timeout.
    edge_defaults = yaml.safe_load((ROOT / "ansible" / "roles" / "edge" / "defaults" / "main.yml").read_text())
    ws = int(str(edge_defaults["edge_websocket_read_timeout"]).rstrip("s"))
    assert ls["connection_configuration"][0]["idle_timeout_in_seconds"] == "${var.lb_idle_timeout_seconds}"
    assert tf.variables()["lb_idle_timeout_seconds"]["default"] >= ws


def test_http_port_redirects_to_https_like_the_edge(tf):
    redirecting = {n for n, s in LB_SERVICES.items() if s.get("http_port")}
    # The edge's own HTTP server does exactly this (301 to https, same path).
    edge_conf = (ROOT / "ansible" / "roles" / "edge" / "templates" / "nginx.conf.j2").read_text(encoding="utf-8")
    assert "return 301 https://" in edge_conf and "$request_uri" in edge_conf
    assert redirecting, "the edge has an http_port: the load balancer must redirect it"
    ls = _res(tf, "oci_load_balancer_listener", "http")
    assert ls["for_each"] == "${local.lb_redirects}"
    assert ls["port"] == "${each.value.http_port}"
    assert ls["rule_set_names"] == ["${oci_load_balancer_rule_set.https_redirect[each.key].name}"]
    rs = _res(tf, "oci_load_balancer_rule_set", "https_redirect")
    assert rs["for_each"] == "${local.lb_redirects}"
    (item,) = rs["items"]
    assert unquote(item["action"]) == "REDIRECT" and item["response_code"] == 301
    (cond,) = item["conditions"]
    assert unquote(cond["attribute_value"]) == "/"
    assert unquote(cond["operator"]) == "FORCE_LONGEST_PREFIX_MATCH"
    uri = item["redirect_uri"][0]
    assert unquote(uri["protocol"]) == "HTTPS"
    assert uri["port"] == "${each.value.port}"
    assert {k: unquote(uri[k]) for k in ("host", "path", "query")} == {
        "host": "{host}",
        "path": "{path}",
        "query": "{query}",
    }


# --------------------------------------------------------------------------
# Private hosts, public LB and bastion only
# --------------------------------------------------------------------------
def test_no_service_host_has_a_public_ip(tf):
    body = _res(tf, "oci_core_instance", "this")
    vnic = body["create_vnic_details"][0]
    assert vnic["subnet_id"] == "${oci_core_subnet.private.id}"
    assert vnic["assign_public_ip"] is False
    assert "assign_public_ip" not in tf.variables()
    subnets = tf.resources("oci_core_subnet")
    assert subnets[("oci_core_subnet", "private")]["prohibit_public_ip_on_vnic"] is True
    # The DB System is private too.
    (db,) = tf.resources("oci_mysql_mysql_db_system").values()
    assert db["subnet_id"] == "${oci_core_subnet.private.id}"
    # Nothing reports an instance's public IP.
    for name, code in _files_code(tf).items():
        assert not re.search(r"\.public_ip\b", code), name


def test_only_the_load_balancer_is_in_the_public_subnet(tf):
    uses = {name: len(re.findall(r"oci_core_subnet\.public\.id", code)) for name, code in _files_code(tf).items()}
    assert {n: c for n, c in uses.items() if c} == {"loadbalancer.tf": 1}, uses
    # The bastion's endpoint is in the private subnet; its public side is the
    # Bastion service's, open to admin_ssh_cidr alone.
    bastion = _res(tf, "oci_bastion_bastion", "this")
    assert bastion["target_subnet_id"] == "${oci_core_subnet.private.id}"
    assert _code(bastion["client_cidr_block_allow_list"]) == "${concat([var.admin_ssh_cidr], var.bastion_client_cidrs)}"
    assert unquote(bastion["bastion_type"]) == "STANDARD"
    assert unquote(bastion["dns_proxy_status"]) == "ENABLED", "dynamic port forwarding (SOCKS5) sessions"
    ttl = tf.variables()["bastion_max_session_ttl_seconds"]
    assert bastion["max_session_ttl_in_seconds"] == "${var.bastion_max_session_ttl_seconds}"
    assert 1800 <= ttl["default"] <= 10800
    # No public IP resource, no other load balancer or instance subnet.
    assert not tf.resources("oci_core_public_ip")
    assert not tf.resources("oci_network_load_balancer_network_load_balancer")


def test_private_subnet_egress_through_nat_and_service_gateway(tf):
    subnets = tf.resources("oci_core_subnet")
    private = subnets[("oci_core_subnet", "private")]
    assert private["route_table_id"] == "${oci_core_route_table.private.id}"
    rt = _res(tf, "oci_core_route_table", "private")
    routes = {(unquote(r["destination_type"]), r["network_entity_id"]) for r in rt["route_rules"]}
    assert routes == {
        ("CIDR_BLOCK", "${oci_core_nat_gateway.this.id}"),
        ("SERVICE_CIDR_BLOCK", "${oci_core_service_gateway.this.id}"),
    }
    nat = next(r for r in rt["route_rules"] if r["network_entity_id"] == "${oci_core_nat_gateway.this.id}")
    assert unquote(nat["destination"]) == "0.0.0.0/0"
    sgw = next(r for r in rt["route_rules"] if r["network_entity_id"] == "${oci_core_service_gateway.this.id}")
    assert sgw["destination"] == "${data.oci_core_services.all.services[0].cidr_block}"
    # The public subnet alone routes to the internet gateway.
    public_rt = _res(tf, "oci_core_route_table", "public")
    assert [r["network_entity_id"] for r in public_rt["route_rules"]] == ["${oci_core_internet_gateway.this.id}"]
    assert subnets[("oci_core_subnet", "public")]["route_table_id"] == "${oci_core_route_table.public.id}"
    # Every instance group may go out on HTTPS (packages, PyPI, Object Storage).
    egress = _code(tf.locals()["egress_rules"])
    assert "for group in local.instance_group_names" in egress
    assert 'destination = "0.0.0.0/0", protocol = "6", port = 443' in egress


def test_the_default_security_list_keeps_path_mtu_discovery(tf):
    (sl,) = tf.resources("oci_core_default_security_list").values()
    assert sl["manage_default_resource_id"] == "${oci_core_vcn.this.default_security_list_id}"
    rules = sl["ingress_security_rules"]
    pmtu = [
        r
        for r in rules
        if r["icmp_options"][0].get("type") == 3
        and r["icmp_options"][0].get("code") == 4
        and unquote(r["source"]) == "0.0.0.0/0"
    ]
    assert len(pmtu) == 1, rules
    assert pmtu[0]["protocol"] == "${local.icmp}" and unquote(tf.locals()["icmp"]) == "1"
    # Nothing but ICMP in the list: ports are opened by NSGs only.
    assert all(r["protocol"] == "${local.icmp}" for r in rules)
    assert "egress_security_rules" not in sl
    # Both subnets use it.
    for key, subnet in tf.resources("oci_core_subnet").items():
        assert subnet["security_list_ids"] == ["${oci_core_vcn.this.default_security_list_id}"], key


# --------------------------------------------------------------------------
# NSGs: services only from the load balancer and their clients; SSH only from the bastion
# --------------------------------------------------------------------------
def test_the_load_balancer_alone_takes_cidr_sourced_service_traffic(tf):
    lb = _code(tf.locals()["lb_rules"])
    assert "for pair in setproduct(local.lb_ports, local.service_sources)" in lb
    assert "nsg_id = oci_core_network_security_group.lb.id" in lb
    assert 'source_type = "CIDR_BLOCK"' in lb
    # The CIDR-sourced rules are the load balancer's and SSH's (from the bastion) only.
    for name in ("published_rules", "client_rules"):
        assert 'source_type = "CIDR_BLOCK"' not in _code(tf.locals()[name]), name
    ssh = _code(tf.locals()["ssh_rules"])
    assert 'source_type = "CIDR_BLOCK", source = local.bastion_source' in ssh
    assert "admin_ssh_cidr" not in ssh and "vcn_cidr" not in ssh


def test_published_services_admit_only_the_load_balancer(tf):
    published = _code(tf.locals()["published_rules"])
    assert "for name, svc in local.lb_services" in published
    assert "nsg_id = local.group_nsg_ids[svc.group], port = svc.port" in published
    assert 'source_type = "NETWORK_SECURITY_GROUP", source = oci_core_network_security_group.lb.id' in published
    # The load balancer reaches exactly its backends' port.
    eg = _res(tf, "oci_core_network_security_group_security_rule", "lb_egress")
    assert eg["for_each"] == "${local.lb_services}"
    assert eg["network_security_group_id"] == "${oci_core_network_security_group.lb.id}"
    assert unquote(eg["destination_type"]) == "NETWORK_SECURITY_GROUP"
    assert eg["destination"] == "${oci_core_network_security_group.service[each.value.group].id}"
    rng = eg["tcp_options"][0]["destination_port_range"][0]
    assert (rng["min"], rng["max"]) == ("${each.value.port}", "${each.value.port}")
    # The host firewall of a published service admits the load balancer's subnet only.
    cidr_vars = _code(tf.locals()["service_client_cidr_vars"])
    assert "svc.published ? [var.public_subnet_cidr]" in cidr_vars
    # The edge takes the client's address from the load balancer's X-Forwarded-For
    # (its sign-in rate limit counts users, not the load balancer).
    infra = _code(_res(tf, "local_file", "infra_vars")["content"])
    assert "lb_subnet_cidrs = [var.public_subnet_cidr]" in infra
    template = (TF_DIR / "templates" / "infra.yml.tftpl").read_text(encoding="utf-8")
    assert "edge_trusted_proxy_cidrs: ${jsonencode(lb_subnet_cidrs)}" in template
    specs = yaml.safe_load((ROOT / "ansible" / "roles" / "edge" / "meta" / "argument_specs.yml").read_text())
    assert "edge_trusted_proxy_cidrs" in specs["argument_specs"]["main"]["options"]


def test_private_services_admit_their_clients_east_west(tf):
    clients = _code(tf.locals()["client_rules"])
    assert "for name, svc in local.private_services" in clients
    assert "for client in try(svc.clients, [])" in clients
    assert 'source_type = "NETWORK_SECURITY_GROUP", source = local.group_nsg_ids[client]' in clients
    # The routed services' clients include the front door's group: the edge
    # (behind the load balancer) reaches them east-west.
    front = {s["group"] for s in LB_SERVICES.values()}
    for name, svc in ROUTED.items():
        assert front & set(svc["clients"]), name


def test_the_edges_peers_listener_admits_the_routed_services_clients(tf):
    """The platform's own hosts call a service with several hosts through the
    edge's peers' listener (Ansible's wiring.yml): its NSG admits the client
    groups of the routed services (the front door's own excepted), by NSG."""
    peers = _code(tf.locals()["peer_rules"])
    assert "for name, svc in local.lb_services" in peers and "for client in local.peer_groups" in peers
    assert "nsg_id = local.group_nsg_ids[svc.group], port = svc.peers_port" in peers
    assert 'source_type = "NETWORK_SECURITY_GROUP", source = local.group_nsg_ids[client]' in peers
    assert "if try(svc.peers_port, null) != null" in peers
    assert "local.peer_rules" in _code(tf.locals()["ingress_rules"])
    groups = _code(tf.locals()["peer_groups"])
    assert "try(svc.clients, []) if try(svc.route, null) != null" in groups and "local.front_door_groups" in groups
    # What that selects from today's topology: the airflow hosts, the Celery
    # workers and the api hosts (MLflow's, Airflow's and the API's clients).
    front = {s["group"] for s in LB_SERVICES.values()}
    want = sorted({c for s in ROUTED.values() for c in s.get("clients", [])} - front)
    assert want == ["airflow", "airflow_worker", "api"]
    assert all(s.get("peers_port") for s in LB_SERVICES.values())


def test_only_groups_whose_services_scale_out_may_have_several_instances(tf):
    groups = _code(tf.locals()["scale_out_groups"])
    assert "try(svc.scale_out, false) if svc.group == group" in groups
    nsg = _res(tf, "oci_core_network_security_group", "service")
    conditions = [_code(p["condition"]) for p in nsg["lifecycle"][0]["precondition"]]
    assert any("local.group_counts[group] <= 1 || contains(local.scale_out_groups, group)" in c for c in conditions), (
        conditions
    )
    # Today: the edge, MLflow, the API (with the dashboard), the Celery
    # workers and Airflow (HA schedulers, only with the workers:
    # scale_out_requires, test_scale_out_requires.py); not the broker (one Redis).
    scalable = sorted(
        g for g in INSTANCE_GROUPS if all(s.get("scale_out", False) for s in SERVICES.values() if s["group"] == g)
    )
    assert scalable == ["airflow", "airflow_worker", "api", "edge", "mlflow"]


def test_ssh_only_through_the_bastion(tf):
    assert unquote(tf.locals()["bastion_source"]) == "${oci_bastion_bastion.this.private_endpoint_ip_address}/32"
    assert unquote(tf.locals()["bastion_host"]) == "host.bastion.${var.region}.oci.oraclecloud.com"
    args = _code(tf.locals()["ssh_common_args"])
    assert args.startswith("${var.inventory_ssh_jump ? format(")
    assert "ssh -W %%h:%%p" in args and "{{ infra_bastion_session_id }}@%s" in args
    assert "local.bastion_host" in args
    assert "public_ip" not in args
    # The host firewalls' SSH source is the same as the NSGs'.
    infra = _code(_res(tf, "local_file", "infra_vars")["content"])
    assert "ssh_sources = concat([local.bastion_source], var.ssh_runner_cidrs)" in infra
    # No precondition about a public jump host any more.
    assert "lifecycle" not in _res(tf, "local_file", "inventory")


# --------------------------------------------------------------------------
# Outputs: the load balancer's URLs, the bastion
# --------------------------------------------------------------------------
def test_outputs_give_the_load_balancer_urls_and_the_bastion(tf):
    outputs = {}
    for doc in tf.parsed.values():
        for block in doc.get("output", []):
            outputs.update({unquote(k): v for k, v in block.items()})
    assert outputs["bastion_id"]["value"] == "${oci_bastion_bastion.this.id}"
    urls = _code(outputs["load_balancer_urls"]["value"])
    assert "for name, svc in local.lb_services" in urls
    assert "https://${local.front_door_names[0]}:${svc.port}/" in urls
    assert outputs["load_balancer_ip"]["value"] == "${one(local.lb_public_ips)}"
    lb_ips = _code(tf.locals()["lb_public_ips"])
    assert "oci_load_balancer_load_balancer.this.ip_address_details" in lb_ips and "if ip.is_public" in lb_ips
    # The published URLs keep the lab's shape: https://<front door>/<route>.
    endpoints = _code(outputs["endpoints"]["value"])
    assert "${local.front_door_names[0]}:${local.front_door_port}${svc.route}" in endpoints
    names = _code(tf.locals()["front_door_names"])
    assert "var.public_hostnames" in names and "local.lb_public_ips" in names
    assert "instances" in outputs and "public_ip" not in _code(outputs["instances"]["value"])


def test_terraform_files_are_where_the_shape_says(tf):
    names = {p.name for p in tf.files}
    assert {"loadbalancer.tf", "bastion.tf", "network.tf", "security.tf"} <= names
    assert (TF_DIR / "templates" / "infra.yml.tftpl").is_file()


def test_a_runner_inside_the_vcn_is_admitted_to_ssh_where_the_bastion_is(tf):
    """ssh_runner_cidrs (a self-hosted CI runner inside the VCN) gets SSH on
    every group's NSG and in the hosts' firewalls (the ssh_sources the
    inventory writes), the same places as the bastion's endpoint; the deploy
    workflow's self-hosted option depends on it."""
    ssh = _code(tf.locals()["ssh_rules"])
    assert "for pair in setproduct(local.instance_group_names, var.ssh_runner_cidrs)" in ssh
    assert "nsg_id = local.group_nsg_ids[pair[0]]" in ssh and "source = pair[1]" in ssh
    infra = _code(_res(tf, "local_file", "infra_vars")["content"])
    assert "ssh_sources = concat([local.bastion_source], var.ssh_runner_cidrs)" in infra
    for name in ("ssh_runner_cidrs", "bastion_client_cidrs"):
        variable = tf.variables()[name]
        assert variable["default"] == [], name
        assert '!endswith(c, "/0")' in _code(variable["validation"]), f"{name}: 0.0.0.0/0 must be refused"


def test_the_deploy_asks_its_bastion_sessions_for_the_bastions_ttl(tf):
    """The deploy workflow's sessions last what the bastion allows (an output),
    not a number of its own that a lower bastion_max_session_ttl_seconds would refuse."""
    outputs = {unquote(n): b for block in tf._blocks("output") for n, b in block.items()}
    assert outputs["bastion_max_session_ttl_seconds"]["value"] == "${var.bastion_max_session_ttl_seconds}"
    deploy = (ROOT / ".github" / "workflows" / "deploy.yml").read_text(encoding="utf-8")
    assert ".bastion_max_session_ttl_seconds.value" in deploy
    assert not re.search(r"--ttl \d", deploy)
