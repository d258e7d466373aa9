# Network security groups: one per instance group, the DB System's and the
# load balancer's. The ingress rules, all in one resource (ingress), follow
# the topology:
# - the load balancer's listeners (each published service's port and
#   http_port) from the VCN, admin_ssh_cidr and service_client_cidrs
#   (local.lb_rules): the only CIDR-sourced service rules;
# - a published service's port on its group's NSG only from the load
#   balancer's NSG (local.published_rules): the edge is not reachable from
#   anywhere else;
# - a private service's port only from the NSGs of its client groups
#   (local.private_services; the DB System's MySQL the same way);
# - SSH (22) on every instance only from the bastion's private endpoint
#   (bastion.tf): no SSH from admin_ssh_cidr or the internet.
# Egress: the VCN, and HTTP(S) out (through NAT from the private subnet); the
# load balancer's NSG only to its backends' port.

resource "oci_core_network_security_group" "service" {
  for_each = toset(local.instance_group_names)

  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${local.name}-${each.key}-nsg"
  freeform_tags  = merge(local.common_tags, { ansible_group = each.key })

  lifecycle {
    precondition {
      condition     = sort(keys(var.instance_groups)) == local.instance_group_names
      error_message = "instance_groups must have exactly the topology's instance groups: ${join(", ", local.instance_group_names)} (ansible/roles/platform_defaults/defaults/main/topology.yml)."
    }
    precondition {
      condition     = alltrue(flatten([for name, svc in local.private_services : [for client in try(svc.clients, []) : contains(local.instance_group_names, client)]]))
      error_message = "Every client group of a private service must be an instance group (its NSG is the rule's source): see the services' clients in the topology."
    }
    # Count 0 (no host) only for the topology's optional groups.
    precondition {
      condition     = alltrue([for group in local.instance_group_names : local.group_counts[group] >= 1 || contains(local.optional_groups, group)])
      error_message = "instance_groups: count 0 for ${join(", ", [for group in local.instance_group_names : group if local.group_counts[group] < 1 && !contains(local.optional_groups, group)])}, which the topology does not mark optional: only ${join(", ", local.optional_groups)} may have no host; the others need 1 to 10."
    }
    # At most one host for a group whose services do not all scale out: the
    # broker (one Redis: the roles run a single broker) and any other group
    # without scale_out. airflow scales out (HA schedulers and api-servers),
    # but only with Celery workers: the last precondition.
    precondition {
      condition     = alltrue([for group in local.instance_group_names : local.group_counts[group] <= 1 || contains(local.scale_out_groups, group)])
      error_message = "instance_groups: ${join(", ", [for group in local.instance_group_names : "${group} has count ${local.group_counts[group]}" if local.group_counts[group] > 1 && !contains(local.scale_out_groups, group)])}: only groups whose services all have scale_out in the topology may have a count above 1 (today: ${join(", ", local.scale_out_groups)}); the others' services run on one host (the broker is one Redis; docs/scaling.md)."
    }
    # An optional group with hosts needs hosts for the services it calls:
    # Celery workers (airflow_worker) without a broker have no queue to take
    # their tasks from.
    precondition {
      condition     = length(local.unserved_optional_groups) == 0
      error_message = "instance_groups: ${join("; ", local.unserved_optional_groups)}. Give that group a host (Celery without a broker: set the broker's count to 1) or the calling group count 0 (docs/scaling.md)."
    }
    # Several hosts of a group need the groups its services' scale_out_requires
    # (topology) lists to have hosts: several airflow hosts (HA schedulers and
    # api-servers) only with Celery workers (airflow_worker, which need the
    # broker: the precondition above).
    precondition {
      condition     = length(local.unmet_scale_out_requirements) == 0
      error_message = "instance_groups: ${join("; ", local.unmet_scale_out_requirements)}. Give each of those groups a count of 1 or more, or that group count 1: its service runs on several hosts only with them (why, for each service: docs/scaling.md)."
    }
  }
}

# The MySQL DB System's NSG (its rules: the private-service rules below).
resource "oci_core_network_security_group" "db" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${local.name}-db-nsg"
  freeform_tags  = local.common_tags
}

# The load balancer's NSG (loadbalancer.tf): its listeners' ports from the
# CIDR sources, and out only to its backends.
resource "oci_core_network_security_group" "lb" {
  compartment_id = var.compartment_ocid
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${local.name}-lb-nsg"
  freeform_tags  = local.common_tags
}

locals {
  # The NSG of each group in local.nsg_groups.
  group_nsg_ids = merge(
    { for group in local.instance_group_names : group => oci_core_network_security_group.service[group].id },
    { (local.db_service.group) = oci_core_network_security_group.db.id },
  )

  # One rule per (load balancer port, CIDR source), on the load balancer's NSG.
  lb_rules = {
    for pair in setproduct(local.lb_ports, local.service_sources) :
    "lb-${pair[0]}-${pair[1]}" => {
      nsg_id      = oci_core_network_security_group.lb.id
      port        = pair[0]
      source_type = "CIDR_BLOCK"
      source      = pair[1]
      description = "The load balancer serves ${pair[0]}/tcp to ${pair[1]}"
    }
  }

  # One rule per published service: its port on its group's NSG, from the
  # load balancer's NSG alone (listeners and health checks).
  published_rules = {
    for name, svc in local.lb_services :
    "${svc.group}-${svc.port}-lb" => {
      nsg_id      = local.group_nsg_ids[svc.group]
      port        = svc.port
      source_type = "NETWORK_SECURITY_GROUP"
      source      = oci_core_network_security_group.lb.id
      description = "${name} (${svc.port}/tcp) from the load balancer"
    }
  }

  # One rule per (private service, client group): the client's NSG as source.
  client_rules = merge([
    for name, svc in local.private_services : {
      for client in try(svc.clients, []) :
      "${svc.group}-${svc.port}-${client}" => {
        nsg_id      = local.group_nsg_ids[svc.group]
        port        = svc.port
        source_type = "NETWORK_SECURITY_GROUP"
        source      = local.group_nsg_ids[client]
        description = "${name} (${svc.port}/tcp) from the ${client} hosts"
      }
    }
  ]...)

  # SSH on every instance from the bastion's private endpoint only (its
  # sessions' connections come from that address in the private subnet).
  # A self-hosted runner inside the VCN (ssh_runner_cidrs) is admitted too.
  ssh_rules = merge({
    for group in local.instance_group_names :
    "${group}-22-bastion" => {
      nsg_id      = local.group_nsg_ids[group]
      port        = 22
      source_type = "CIDR_BLOCK"
      source      = local.bastion_source
      description = "SSH from the bastion's private endpoint"
    }
    }, {
    for pair in setproduct(local.instance_group_names, var.ssh_runner_cidrs) :
    "${pair[0]}-22-runner-${pair[1]}" => {
      nsg_id      = local.group_nsg_ids[pair[0]]
      port        = 22
      source_type = "CIDR_BLOCK"
      source      = pair[1]
      description = "SSH from a runner inside the VCN (ssh_runner_cidrs)"
    }
  })

  # The front door's peers' listener (topology peers_port): the platform's
  # own hosts call a service with several hosts through it (Ansible's
  # wiring.yml), so it admits the NSGs of the routed services' client groups
  # other than the front door's own.
  peer_rules = merge([
    for name, svc in local.lb_services : {
      for client in local.peer_groups :
      "${svc.group}-${svc.peers_port}-${client}" => {
        nsg_id      = local.group_nsg_ids[svc.group]
        port        = svc.peers_port
        source_type = "NETWORK_SECURITY_GROUP"
        source      = local.group_nsg_ids[client]
        description = "${name}'s peers' listener (${svc.peers_port}/tcp) from the ${client} hosts"
      }
    } if try(svc.peers_port, null) != null
  ]...)

  ingress_rules = merge(local.lb_rules, local.published_rules, local.client_rules, local.peer_rules, local.ssh_rules)
}

resource "oci_core_network_security_group_security_rule" "ingress" {
  #checkov:skip=CKV_OCI_21:Stateful on purpose: a stateless ingress rule needs a matching stateless egress rule for the replies (ephemeral ports 1024-65535 to the same sources), which opens more than this rule.
  for_each = local.ingress_rules

  network_security_group_id = each.value.nsg_id
  direction                 = "INGRESS"
  protocol                  = "6"
  source_type               = each.value.source_type
  source                    = each.value.source
  stateless                 = false
  description               = each.value.description

  tcp_options {
    destination_port_range {
      min = each.value.port
      max = each.value.port
    }
  }
}

# Egress: anything inside the VCN (the DB System, the other services), and
# HTTPS/HTTP out (packages, PyPI, Object Storage, OCI APIs: through the NAT
# and service gateways from the private subnet). DNS and NTP use
# 169.254.169.254, which security rules do not govern.
locals {
  egress_rules = merge([
    for group in local.instance_group_names : {
      "${group}-vcn"   = { group = group, destination = var.vcn_cidr, protocol = "all", port = null }
      "${group}-https" = { group = group, destination = "0.0.0.0/0", protocol = "6", port = 443 }
      "${group}-http"  = { group = group, destination = "0.0.0.0/0", protocol = "6", port = 80 }
    }
  ]...)
}

resource "oci_core_network_security_group_security_rule" "egress" {
  for_each = local.egress_rules

  network_security_group_id = oci_core_network_security_group.service[each.value.group].id
  direction                 = "EGRESS"
  protocol                  = each.value.protocol
  destination_type          = "CIDR_BLOCK"
  destination               = each.value.destination
  stateless                 = false
  description               = each.value.port == null ? "Anything in the VCN" : "Outbound ${each.value.port}/tcp"

  dynamic "tcp_options" {
    for_each = each.value.port == null ? [] : [each.value.port]
    content {
      destination_port_range {
        min = tcp_options.value
        max = tcp_options.value
      }
    }
  }
}

# The load balancer reaches its backends only: each published service's port
# on its group's NSG (traffic and health checks).
resource "oci_core_network_security_group_security_rule" "lb_egress" {
  for_each = local.lb_services

  network_security_group_id = oci_core_network_security_group.lb.id
  direction                 = "EGRESS"
  protocol                  = "6"
  destination_type          = "NETWORK_SECURITY_GROUP"
  destination               = oci_core_network_security_group.service[each.value.group].id
  stateless                 = false
  description               = "To ${each.key} (${each.value.port}/tcp) on the ${each.value.group} hosts"

  tcp_options {
    destination_port_range {
      min = each.value.port
      max = each.value.port
    }
  }
}
